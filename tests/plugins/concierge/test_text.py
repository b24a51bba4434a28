"""The plain-text filter: everything escaped, only http/https links clickable, and those safely."""

from __future__ import annotations

import pytest

from plugins.concierge.text import linkify


def test_plain_text_is_escaped_and_links_become_safe_anchors():
    html = str(linkify("See https://example.com/menu?a=1&b=2. <b>bold</b>"))
    assert (
        '<a href="https://example.com/menu?a=1&amp;b=2" rel="nofollow noopener noreferrer"' in html
    )
    assert html.endswith("</a>. &lt;b&gt;bold&lt;/b&gt;")


@pytest.mark.parametrize(
    "attack",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "javascript:alert(1)",
        "JaVaScRiPt:alert(document.cookie)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        'https://ok.example/"onmouseover="alert(1)',
        "https://ok.example/<script>alert(1)</script>",
        "http://x.example/'><svg/onload=alert(1)>",
    ],
)
def test_xss_attempts_stay_inert(attack):
    html = str(linkify(attack))
    assert "<script" not in html and "<img" not in html and "<svg" not in html
    assert 'href="javascript' not in html.lower() and 'href="data' not in html.lower()
    # No attribute is opened by the text: every quote inside a link is escaped.
    for anchor in html.split("<a ")[1:]:
        attributes = anchor.split(">", 1)[0]
        assert attributes.count('"') == 6  # href, rel and target, each quoted once


def test_a_bare_scheme_is_not_a_link_and_trailing_punctuation_stays_outside():
    assert "<a" not in str(linkify("http:// and https://"))
    assert str(linkify("(https://a.example)")).endswith("</a>)")

"""Plain text shown safely: everything escaped, line breaks kept, http(s) links made clickable."""

from __future__ import annotations

import re

from markupsafe import Markup, escape

# A link runs to the next blank or angle bracket/quote; trailing punctuation stays outside it.
_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}»”’"
_ANCHOR = Markup('<a href="{url}" rel="nofollow noopener noreferrer" target="_blank">{url}</a>')


def linkify(text: str | None) -> Markup:
    """Escape ``text`` and turn its http/https addresses into ``rel="nofollow noopener"`` links.

    Only the two schemes are matched, so ``javascript:`` and ``data:`` stay inert text; the address
    is escaped in the attribute and in the link text alike.
    """
    text = text or ""
    parts: list[Markup] = []
    position = 0
    for match in _URL.finditer(text):
        url = match.group(0)
        while url and url[-1] in _TRAILING:
            url = url[:-1]
        if len(url) <= len("https://"):
            continue
        start, end = match.start(), match.start() + len(url)
        parts.append(escape(text[position:start]))
        parts.append(_ANCHOR.format(url=url))  # Markup.format escapes the address
        position = end
    parts.append(escape(text[position:]))
    return Markup("").join(parts)

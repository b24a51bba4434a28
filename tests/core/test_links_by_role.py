"""Every same-site link a role's pages show opens for that role: each person of the demo street
(every plugin on) follows the links of their pages, breadth first, and each answers 2xx."""

from __future__ import annotations

from collections import Counter, deque
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest
from sqlalchemy import select

import neighbourly_demo as demo
from tests.demo_people import load_demo_people
from webapp.extensions import db
from webapp.models import User

MAX_PAGES = 160  # per role: the demo street's pages for one person, with room to spare
MAX_PER_PATH = 2  # query-string variants of one page (pagination, filters) followed
# Links that end the session or hand over a file are not followed (no downloads).
SKIPPED = ("/auth/logout", "/static/", "/assets/")
DOWNLOADS = (".csv", ".pdf", ".zip", ".png", ".jpg", ".svg", ".json", "/export", "/download")


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "a" and attributes.get("href") and "download" not in attributes:
            self.links.append(attributes["href"])


def same_site_links(page_url: str, html: str, public_url: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    found = []
    for href in parser.links:
        url, _fragment = urldefrag(urljoin(page_url, href))
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", ""):
            continue  # mailto:, tel:
        if parts.netloc and not url.startswith(public_url):
            continue  # another site
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        if not path.startswith("/") or path.startswith(SKIPPED) or parts.path.endswith(DOWNLOADS) or any(
            marker in parts.path for marker in DOWNLOADS
        ):
            continue
        found.append(path)
    return found


def walk(client, start: list[str], public_url: str) -> dict[str, int]:
    """Breadth first from ``start``; the status of every page reached (after redirects)."""
    statuses: dict[str, int] = {}
    per_path: Counter[str] = Counter()
    queue = deque(start)
    while queue and len(statuses) < MAX_PAGES:
        path = queue.popleft()
        bare = path.split("?")[0]
        if path in statuses or per_path[bare] >= MAX_PER_PATH:
            continue
        per_path[bare] += 1
        response = client.get(path, follow_redirects=True)
        statuses[path] = response.status_code
        if response.status_code == 200 and response.mimetype == "text/html":
            base = "http://localhost" + path
            queue.extend(link for link in same_site_links(base, response.get_data(as_text=True), public_url)
                         if link not in statuses)
    return statuses


@pytest.mark.parametrize("role", ["customer", "cashier", "owner", "operator"])
def test_every_link_a_role_sees_opens_for_that_role(app, client, role):
    people = load_demo_people()
    email = {
        "customer": people.customer_email, "cashier": people.cashier_email,
        "owner": people.owner_email, "operator": people.operator_email,
    }[role]
    user = db.session.scalar(select(User).where(User.email == email))
    client.login(user, password=demo.DEMO_PASSWORD)
    landing = client.get("/", follow_redirects=True)
    assert landing.status_code == 200
    start = ["/", "/wallet/", "/account/", "/business/"]
    if role in ("cashier", "owner"):
        start.append(f"/business/{people.shop_slug}/till")
    if role == "operator":
        start.append("/operator/")
    public_url = (app.config.get("PUBLIC_URL") or "http://localhost").rstrip("/")
    statuses = walk(client, start, public_url)
    failed = {path: status for path, status in statuses.items() if not 200 <= status < 300}
    assert failed == {}, f"{role} was shown links that answer: {failed}"
    assert len(statuses) >= 10, statuses  # the walk went somewhere
    if role in ("cashier", "owner"):
        assert any("/till" in path for path in statuses)

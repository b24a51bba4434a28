"""Writing, listing and removing a merchant's news posts."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from flask_babel import gettext as _
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from plugins.news.models import MAX_BODY, MAX_LINK, MAX_TITLE, NewsPost
from webapp.plugin_api import Merchant, NotFound, User, ValidationFailed, unit_of_work

PAGE_SIZE = 25


@dataclass(frozen=True)
class PostInput:
    """What the owner typed, cleaned: plain text title and body, an optional http(s) link."""

    title: str
    body: str
    link: str


def clean_post(title: str | None, body: str | None, link: str | None) -> PostInput:
    """Check every field at once; ``ValidationFailed.details["errors"]`` maps field -> message."""
    title = " ".join((title or "").split())
    # Browsers send CRLF; count characters the way the customer will see them.
    body = (body or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    link = (link or "").strip()
    errors: dict[str, str] = {}
    if not title:
        errors["title"] = _("Give the post a title.")
    elif len(title) > MAX_TITLE:
        errors["title"] = _("The title can have at most %(count)s characters.", count=MAX_TITLE)
    if not body:
        errors["body"] = _("Write the news itself.")
    elif len(body) > MAX_BODY:
        errors["body"] = _(
            "At most %(count)s characters; this has %(length)s.", count=MAX_BODY, length=len(body)
        )
    if link:
        error = link_error(link)
        if error:
            errors["link"] = error
    if errors:
        raise ValidationFailed(next(iter(errors.values())), errors=errors)
    return PostInput(title=title, body=body, link=link)


def link_error(link: str) -> str | None:
    """Only complete http(s) addresses: no javascript:, data: or relative links in our pages."""
    if len(link) > MAX_LINK:
        return _("The link can have at most %(count)s characters.", count=MAX_LINK)
    if any(ch.isspace() or ord(ch) < 32 for ch in link):
        return _("A link cannot contain spaces.")
    try:
        parts = urlsplit(link)
    except ValueError:
        return _("Enter a full web address starting with https://")
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return _("Enter a full web address starting with https://")
    return None


def create_post(
    session: Session, merchant: Merchant, author: User, title: str, body: str, link: str = ""
) -> NewsPost:
    data = clean_post(title, body, link)
    with unit_of_work(session):
        post = NewsPost(
            merchant_id=merchant.id, title=data.title, body=data.body, link=data.link,
            created_by_id=author.id,
        )
        session.add(post)
    return post


def get_post(session: Session, merchant: Merchant, post_id: int) -> NewsPost:
    """A post of this merchant; another merchant's post is as missing as a deleted one."""
    post = session.scalar(
        select(NewsPost).where(NewsPost.id == post_id, NewsPost.merchant_id == merchant.id)
    )
    if post is None:
        raise NotFound(_("No such post."))
    return post


def update_post(
    session: Session, merchant: Merchant, post_id: int, title: str, body: str, link: str = ""
) -> NewsPost:
    post = get_post(session, merchant, post_id)
    data = clean_post(title, body, link)
    with unit_of_work(session):
        post.title, post.body, post.link = data.title, data.body, data.link
    return post


def delete_post(session: Session, merchant: Merchant, post_id: int) -> None:
    post = get_post(session, merchant, post_id)
    with unit_of_work(session):
        session.delete(post)


@lru_cache(maxsize=1)
def _latest_posts_statement():
    """A merchant's newest posts, built once (the wallet and the merchant page run it)."""
    return (
        select(NewsPost)
        .where(NewsPost.merchant_id == bindparam("merchant_id"))
        .order_by(NewsPost.published_at.desc(), NewsPost.id.desc())
        .limit(bindparam("limit"))
    )


def latest_posts(session: Session, merchant_id: int, limit: int) -> list[NewsPost]:
    return list(session.scalars(_latest_posts_statement(), {"merchant_id": merchant_id, "limit": limit}))


@lru_cache(maxsize=1)
def _latest_post_and_count_statement():
    """The dashboard panel's statement, built once."""
    return (
        select(NewsPost, func.count().over().label("total"))
        .where(NewsPost.merchant_id == bindparam("merchant_id"))
        .order_by(NewsPost.published_at.desc(), NewsPost.id.desc())
        .limit(1)
    )


def latest_post_and_count(session: Session, merchant_id: int) -> tuple[NewsPost | None, int]:
    """The newest post and how many there are, in one statement (the dashboard panel)."""
    row = session.execute(_latest_post_and_count_statement(), {"merchant_id": merchant_id}).first()
    return (row[0], int(row[1])) if row else (None, 0)


def count_posts(session: Session, merchant_id: int) -> int:
    return session.scalar(
        select(func.count()).select_from(NewsPost).where(NewsPost.merchant_id == merchant_id)
    ) or 0


@dataclass(frozen=True)
class PostPage:
    posts: list[NewsPost]
    page: int
    pages: int


def list_posts(session: Session, merchant: Merchant, page: int = 1) -> PostPage:
    """One page of posts, newest first; a page number out of range shows the nearest page."""
    total = count_posts(session, merchant.id)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    posts = session.scalars(
        select(NewsPost)
        .where(NewsPost.merchant_id == merchant.id)
        .order_by(NewsPost.published_at.desc(), NewsPost.id.desc())
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    return PostPage(list(posts), page, pages)


def forget_author(session: Session, user_id: int) -> None:
    """Erasure: posts stay (they are the merchant's), the link to the person goes."""
    session.execute(
        update(NewsPost).where(NewsPost.created_by_id == user_id).values(created_by_id=None)
    )

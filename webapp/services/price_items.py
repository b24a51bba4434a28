"""Merchants' price lists as rows: edited by the owner, shown on the public page, searchable on
the street. Every write re-indexes the changed items in the full-text search service in the same
transaction, so the street never finds an item that is gone or misses one just added."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.errors import NotFound, ValidationFailed
from webapp.models import Merchant, Network, PriceItem
from webapp.services import fulltext, photos
from webapp.unit_of_work import unit_of_work

KIND = "price_item"
MAX_ITEMS = 100
MAX_NAME = 120
MAX_CATEGORY = 60
MAX_PRICE = 10**12  # minor units; larger is a typo


@dataclass(frozen=True)
class ItemRow:
    """One row of the owner's form: an existing item (``id``) or a new one (``id`` None)."""

    id: int | None
    name: str
    price: int  # minor units
    category: str = ""


def language_of(network: Network) -> str:
    """Items of a street are indexed and searched in the network's default language."""
    return network.default_locale or "en"


def document(item: PriceItem, language: str) -> fulltext.Document:
    return fulltext.Document(
        KIND, item.id, item.merchant_id, language, text=item.category or "", weight_text=item.name
    )


def items_of(session: Session, merchant: Merchant) -> list[PriceItem]:
    return list(
        session.scalars(
            select(PriceItem)
            .where(PriceItem.merchant_id == merchant.id)
            .order_by(PriceItem.position, PriceItem.id)
        )
    )


def _check(row: ItemRow) -> None:
    name = (row.name or "").strip()
    if not name or len(name) > MAX_NAME:
        raise ValidationFailed(_("Each row needs a name of at most 120 characters."))
    if len((row.category or "").strip()) > MAX_CATEGORY:
        raise ValidationFailed(
            _("A category has at most %(limit)s characters.", limit=MAX_CATEGORY)
        )
    if not 0 <= row.price <= MAX_PRICE:
        raise ValidationFailed(_("Prices must be zero or more."))


def save_items(session: Session, merchant: Merchant, rows: list[ItemRow]) -> list[PriceItem]:
    """Make the merchant's list exactly ``rows`` in this order: update the rows with an id, add
    the others, delete the items left out (and their photos). One commit; re-indexed within it."""
    if len(rows) > MAX_ITEMS:
        raise ValidationFailed(_("At most %(count)s rows in the price list.", count=MAX_ITEMS))
    for row in rows:
        _check(row)
    existing = {item.id: item for item in items_of(session, merchant)}
    wanted_ids = [row.id for row in rows if row.id is not None]
    if any(item_id not in existing for item_id in wanted_ids) or len(set(wanted_ids)) != len(
        wanted_ids
    ):
        raise ValidationFailed(_("The price list changed in another window; reload the page."))
    kept: list[PriceItem] = []
    with unit_of_work(session):
        for position, row in enumerate(rows):
            item = existing.get(row.id) if row.id is not None else None
            if item is None:
                item = PriceItem(merchant_id=merchant.id)
                session.add(item)
            item.name, item.price = row.name.strip(), int(row.price)
            item.category, item.position = (row.category or "").strip(), position
            kept.append(item)
        removed = [item for item_id, item in existing.items() if item_id not in set(wanted_ids)]
        leftover_files = [item.photo_filename for item in removed if item.photo_filename]
        for item in removed:
            session.delete(item)
        session.flush()
        language = language_of(merchant.network)
        fulltext.remove_many(session, kind=KIND, ref_ids=[item.id for item in removed])
        fulltext.index_many(session, [document(item, language) for item in kept])
    _unlink(leftover_files)
    return kept


def add_items(session: Session, merchant: Merchant, rows: list[ItemRow], language: str) -> None:
    """Append items without committing (demo data, migrations of old lists, the bench)."""
    last = session.scalar(
        select(func.max(PriceItem.position)).where(PriceItem.merchant_id == merchant.id)
    )
    start = (last + 1) if last is not None else 0
    items = []
    for offset, row in enumerate(rows):
        _check(row)
        items.append(
            PriceItem(
                merchant_id=merchant.id,
                name=row.name.strip(),
                price=int(row.price),
                category=(row.category or "").strip(),
                position=start + offset,
            )
        )
    session.add_all(items)
    session.flush()
    fulltext.index_many(session, [document(item, language) for item in items])


def reindex_network(session: Session, network: Network) -> int:
    """Index every item of a network's merchants again (after its default language changed)."""
    language = language_of(network)
    items = session.scalars(
        select(PriceItem)
        .join(Merchant, Merchant.id == PriceItem.merchant_id)
        .where(Merchant.network_id == network.id)
    ).all()
    for start in range(0, len(items), 1000):
        fulltext.index_many(
            session, [document(item, language) for item in items[start : start + 1000]]
        )
    return len(items)


def _item(session: Session, merchant: Merchant, item_id: int) -> PriceItem:
    item = session.scalar(
        select(PriceItem).where(PriceItem.id == item_id, PriceItem.merchant_id == merchant.id)
    )
    if item is None:
        raise NotFound(_("No such item in your price list."))
    return item


def _unlink(filenames: list[str], folder: str | None = None) -> None:
    from flask import current_app

    base = Path(folder or current_app.config["UPLOAD_FOLDER"])
    for filename in filenames:
        if filename and photos.FILENAME_PATTERN.fullmatch(filename):
            (base / filename).unlink(missing_ok=True)


def set_photo(
    session: Session,
    merchant: Merchant,
    item_id: int,
    data: bytes,
    upload_folder: str,
    limits: photos.Limits,
) -> PriceItem:
    """Check and re-encode a photo of an item (as merchant photos are) and replace the old one."""
    item = _item(session, merchant, item_id)
    encoded, extension, width, height = photos.reencode(data, limits)
    folder = Path(upload_folder)
    folder.mkdir(parents=True, exist_ok=True)
    filename = f"{secrets.token_hex(16)}.{extension}"
    target = folder / filename
    partial = folder / f".{filename}.part"
    partial.write_bytes(encoded)
    os.replace(partial, target)
    old = item.photo_filename
    try:
        with unit_of_work(session):
            item.photo_filename, item.photo_width, item.photo_height = filename, width, height
    except Exception:
        target.unlink(missing_ok=True)  # nothing half-written: no file without its row
        raise
    if old:
        _unlink([old], upload_folder)
    return item


def delete_photo(session: Session, merchant: Merchant, item_id: int, upload_folder: str) -> None:
    item = _item(session, merchant, item_id)
    old = item.photo_filename
    with unit_of_work(session):
        item.photo_filename, item.photo_width, item.photo_height = None, 0, 0
    if old:
        _unlink([old], upload_folder)

"""core: full-text search documents (PostgreSQL tsvector + GIN, SQLite FTS5), price lists as
rows (``price_items``, every entry of the old JSON ``merchants.price_list`` copied, then the column
dropped) indexed for search, and weekly opening hours (``merchant_hours``) read from the free text
where it parses (the text stays as the note).

Revision ID: core_0010_price_items
Revises: core_0009_ledger_reason_kinds
Create Date: 2026-12-07 06:50:00

"""
import json
import re
from datetime import UTC, datetime

import snowballstemmer
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "core_0010_price_items"
down_revision = "core_0009_ledger_reason_kinds"
branch_labels = None
depends_on = None

FTS_TABLE = "search_documents_fts"
GIN_INDEX = "ix_search_documents_tsv"


def upgrade():
    op.create_table(
        "search_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("ref_id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=True),
        sa.Column("language", sa.String(length=10), nullable=False),
        sa.Column("tsv", sa.Text().with_variant(postgresql.TSVECTOR(), "postgresql"), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], name=op.f("fk_search_documents_merchant_id_merchants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_documents")),
        sa.UniqueConstraint("kind", "ref_id", name=op.f("uq_search_documents_kind_ref_id")),
    )
    op.create_index(op.f("ix_search_documents_merchant_id"), "search_documents", ["merchant_id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX {GIN_INDEX} ON search_documents USING gin (tsv)")
    else:
        op.execute(f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(title, body, tokenize = 'unicode61')")

    op.create_table(
        "price_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("price", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=60), server_default="", nullable=False),
        sa.Column("photo_filename", sa.String(length=80), nullable=True),
        sa.Column("photo_width", sa.Integer(), server_default="0", nullable=False),
        sa.Column("photo_height", sa.Integer(), server_default="0", nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("price >= 0", name=op.f("ck_price_items_price_not_negative")),
        sa.CheckConstraint("length(name) > 0", name=op.f("ck_price_items_name_not_empty")),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], name=op.f("fk_price_items_merchant_id_merchants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_items")),
        sa.UniqueConstraint("photo_filename", name=op.f("uq_price_items_photo_filename")),
    )
    op.create_index(op.f("ix_price_items_merchant_id"), "price_items", ["merchant_id"], unique=False)
    op.create_index("ix_price_items_category_price", "price_items", ["category", "price"], unique=False)
    op.create_table(
        "merchant_hours",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("opens", sa.Integer(), nullable=False),
        sa.Column("closes", sa.Integer(), nullable=False),
        sa.CheckConstraint("weekday >= 0 AND weekday <= 6", name=op.f("ck_merchant_hours_weekday_range")),
        sa.CheckConstraint("opens >= 0 AND opens < 1440", name=op.f("ck_merchant_hours_opens_range")),
        sa.CheckConstraint("closes > 0 AND closes <= 1440 AND closes <> opens", name=op.f("ck_merchant_hours_closes_range")),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], name=op.f("fk_merchant_hours_merchant_id_merchants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_hours")),
        sa.UniqueConstraint("merchant_id", "weekday", name=op.f("uq_merchant_hours_merchant_id_weekday")),
    )
    op.create_index(op.f("ix_merchant_hours_merchant_id"), "merchant_hours", ["merchant_id"], unique=False)

    _copy_price_lists()
    _read_opening_hours()
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE merchants DROP COLUMN price_list")  # native since SQLite 3.35
    else:
        op.drop_column("merchants", "price_list")


# --- price lists -------------------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+")
_CONFIGS = {"ru": ("russian", "russian"), "en": ("english", "english")}


def _price(value):
    """Old entries hold minor units as an int; tolerate numeric strings and floats from old data."""
    try:
        return max(0, int(round(float(value))))
    except (TypeError, ValueError):
        return 0


def _stems(value, language):
    """The words as webapp.services.fulltext stores them on SQLite (a copy: no app imports here)."""
    words = _WORD.findall((value or "").replace("\x00", " ").lower())
    name = _CONFIGS.get((language or "").split("_")[0].split("-")[0].lower(), ("simple", None))[1]
    if name is None:
        return words
    stemmer, english = snowballstemmer.stemmer(name), snowballstemmer.stemmer("english")
    if name == "english":
        return [stemmer.stemWord(word) for word in words]
    return [(english if word.isascii() else stemmer).stemWord(word) for word in words]


def _copy_price_lists():
    bind = op.get_bind()
    now = datetime.now(UTC)
    rows = bind.execute(sa.text(
        "SELECT m.id, m.price_list, n.default_locale FROM merchants m JOIN networks n ON n.id = m.network_id ORDER BY m.id"
    )).all()
    items = sa.table(
        "price_items", sa.column("merchant_id", sa.Integer), sa.column("name", sa.String),
        sa.column("price", sa.Integer), sa.column("category", sa.String), sa.column("position", sa.Integer),
        sa.column("created_at", sa.DateTime(timezone=True)), sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    languages = {}
    for merchant_id, price_list, locale in rows:
        languages[merchant_id] = locale or "en"
        if isinstance(price_list, str):
            try:
                price_list = json.loads(price_list)
            except ValueError:
                price_list = []
        new_rows = []
        for entry in price_list or []:
            if isinstance(entry, dict):
                name, price = str(entry.get("name") or "").strip(), _price(entry.get("price"))
            else:  # a bare string in a hand-edited list: keep it as a name without a price
                name, price = str(entry).strip(), 0
            if not name:
                continue
            new_rows.append({
                "merchant_id": merchant_id, "name": name[:120], "price": price, "category": "",
                "position": len(new_rows), "created_at": now, "updated_at": now,
            })
        if new_rows:
            bind.execute(items.insert(), new_rows)
    stored = bind.execute(sa.text("SELECT id, merchant_id, name FROM price_items ORDER BY id")).all()
    if not stored:
        return
    docs = [
        {"kind": "price_item", "ref_id": item_id, "merchant_id": merchant_id,
         "language": languages.get(merchant_id, "en")[:10], "updated_at": now, "title": name,
         "config": _CONFIGS.get(languages.get(merchant_id, "en")[:2], ("simple", None))[0]}
        for item_id, merchant_id, name in stored
    ]
    if bind.dialect.name == "postgresql":
        bind.execute(sa.text(
            "INSERT INTO search_documents (kind, ref_id, merchant_id, language, updated_at, tsv) "
            "VALUES (:kind, :ref_id, :merchant_id, :language, :updated_at, "
            "setweight(to_tsvector(CAST(:config AS regconfig), :title), 'A'))"
        ), docs)
        return
    bind.execute(sa.text(
        "INSERT INTO search_documents (kind, ref_id, merchant_id, language, updated_at) "
        "VALUES (:kind, :ref_id, :merchant_id, :language, :updated_at)"
    ), docs)
    ids = dict(bind.execute(sa.text("SELECT ref_id, id FROM search_documents WHERE kind = 'price_item'")).all())
    bind.execute(sa.text(f"INSERT INTO {FTS_TABLE} (rowid, title, body) VALUES (:id, :title, '')"), [
        {"id": ids[doc["ref_id"]], "title": " ".join(_stems(doc["title"], doc["language"]))} for doc in docs
    ])


# --- opening hours: a copy of webapp.services.hours.parse_text -------------------------------------

DAY = 1440

_DAY_NAMES = {
    "mon": 0, "monday": 0, "пн": 0, "пон": 0, "понедельник": 0,
    "tue": 1, "tues": 1, "tuesday": 1, "вт": 1, "вторник": 1,
    "wed": 2, "wednesday": 2, "ср": 2, "среда": 2,
    "thu": 3, "thur": 3, "thurs": 3, "thursday": 3, "чт": 3, "четверг": 3,
    "fri": 4, "friday": 4, "пт": 4, "пятница": 4,
    "sat": 5, "saturday": 5, "сб": 5, "суббота": 5,
    "sun": 6, "sunday": 6, "вс": 6, "воскресенье": 6,
}  # fmt: skip
_EVERY_DAY = re.compile(r"\b(daily|every\s*day|ежедневно|каждый\s+день|без\s+выходных)\b", re.I)
_ALL_DAY = re.compile(r"(24\s*/\s*7|24\s*(hours|hrs|h|часа)\b|round the clock|круглосуточно)", re.I)
_RANGE = re.compile(
    r"(\d{1,2})(?:[:.](\d{2}))?\s*(?:-|–|—|to|до)\s*(\d{1,2})(?:[:.](\d{2}))?", re.I
)
_DAY_WORD = re.compile(r"[^\W\d_]+")
_DASHES = re.compile(r"\s*(?:-|–|—)\s*")


def _minutes(hour: str, minute: str | None) -> int | None:
    h, m = int(hour), int(minute or 0)
    if m > 59 or h > 24 or (h == 24 and m):
        return None
    return h * 60 + m


def _days(text: str) -> list[int] | None:
    """Weekdays named in ``text`` ("Mon–Fri", "Sat, Sun", "Пн-Пт"); [] when none, None if unclear."""
    text = text.strip().lower().rstrip(":")
    if not text:
        return []
    if _EVERY_DAY.search(text):
        return list(range(7))
    found: list[int] = []
    for part in re.split(r"[,/&]|\band\b|\bи\b", text):
        part = part.strip().rstrip(".")
        if not part:
            continue
        ends = _DASHES.split(part)
        if len(ends) == 2:
            first, last = _DAY_NAMES.get(ends[0].strip(".")), _DAY_NAMES.get(ends[1].strip("."))
            if first is None or last is None:
                return None
            day = first
            while True:
                found.append(day)
                if day == last:
                    break
                day = (day + 1) % 7
        elif part.strip(".") in _DAY_NAMES:
            found.append(_DAY_NAMES[part.strip(".")])
        else:
            return None
    return found


def parse_text(text: str | None) -> dict | None:
    """Hours read from free text, or None when any part of it is not understood."""
    text = (text or "").strip()
    if not text or len(text) > 1000:
        return None
    hours: dict = {}
    parts = [
        part for part in re.split(r"[\n;,]+(?![^\d\n;,]*\d\s*(?:-|–|—))", text) if part.strip()
    ]
    # A comma may separate days ("Sat, Sun 10-18"), so split only before a part with its own range.
    pending_days: list[int] = []
    for part in parts:
        match = _RANGE.search(part)
        if match is None:
            if _ALL_DAY.search(part):
                before = _ALL_DAY.split(part)[0]
                before = re.sub(r"\bopen\b|открыто", "", before, flags=re.I)
                days = _days(before)
                if days is None:
                    return None
                for day in days or pending_days or range(7):
                    hours[day] = (0, DAY)
                pending_days = []
                continue
            days = _days(part)
            if not days:
                return None
            if hours and all(v == (0, DAY) for v in hours.values()):
                continue  # "Open 24 hours, every day"
            pending_days = days
            continue
        days = _days(part[: match.start()])
        if days is None or part[match.end() :].strip(" .;"):
            return None
        opens, closes = _minutes(match[1], match[2]), _minutes(match[3], match[4])
        if opens is None or closes is None or opens == DAY:
            return None
        if closes == opens:
            return None
        if closes == 0:
            closes = DAY
        for day in (pending_days + days) or range(7):
            hours[day] = (opens, closes)
        pending_days = []
    return hours or None




def _read_opening_hours():
    bind = op.get_bind()
    hours = sa.table(
        "merchant_hours", sa.column("merchant_id", sa.Integer), sa.column("weekday", sa.Integer),
        sa.column("opens", sa.Integer), sa.column("closes", sa.Integer),
    )
    rows = []
    for merchant_id, text in bind.execute(sa.text("SELECT id, opening_hours FROM merchants ORDER BY id")):
        parsed = parse_text(text)
        for weekday, (opens, closes) in sorted((parsed or {}).items()):
            rows.append({"merchant_id": merchant_id, "weekday": weekday, "opens": opens, "closes": closes})
    if rows:
        bind.execute(hours.insert(), rows)


def downgrade():
    with op.batch_alter_table("merchants") as batch_op:
        batch_op.add_column(sa.Column("price_list", sa.JSON(), nullable=False, server_default="[]"))
    bind = op.get_bind()
    lists = {}
    for merchant_id, name, price in bind.execute(
        sa.text("SELECT merchant_id, name, price FROM price_items ORDER BY merchant_id, position, id")
    ):
        lists.setdefault(merchant_id, []).append({"name": name, "price": price})
    merchants = sa.table("merchants", sa.column("id", sa.Integer), sa.column("price_list", sa.JSON))
    for merchant_id, entries in lists.items():
        bind.execute(merchants.update().where(merchants.c.id == merchant_id).values(price_list=entries))
    op.drop_index(op.f("ix_merchant_hours_merchant_id"), table_name="merchant_hours")
    op.drop_table("merchant_hours")
    op.drop_index("ix_price_items_category_price", table_name="price_items")
    op.drop_index(op.f("ix_price_items_merchant_id"), table_name="price_items")
    op.drop_table("price_items")
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")
    op.drop_index(op.f("ix_search_documents_merchant_id"), table_name="search_documents")
    op.drop_table("search_documents")

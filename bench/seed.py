"""Scale data for the bench: merchants, customers and a sales history written in bulk, books balanced.

The history is simulated once in memory (compact arrays), then written with ``executemany`` on
SQLite and ``COPY`` on PostgreSQL. What the purchase service keeps consistent is consistent here
too: every card's balance equals its ledger, its counters equal its purchases, and the per-week
merchant figures equal the sums over purchases and cards (``check_books`` verifies it).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import random
import sqlite3
import time
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg

from webapp import ledger_reasons
from webapp.rules import points_earned, points_limit

SEED = 4242
HISTORY_DAYS = 182
BIG_SHARE = 0.10  # the largest merchant holds this share of all purchases
POINTS_SHARE = 0.2  # how often a customer pays partly with points
POINT_VALUE = 1  # the bench network's default: one point is one minor unit
PASSWORD = "bench-password-1"  # noqa: S105 - a throw-away database's shared password
CONSENT_VERSION = "bench"
WALLET_CARDS = 3
WALLET_SHARE = 0.001  # the wallet customer's share of all sales: 10 at 10k, 1,000 at 1M
_EPOCH_MONDAY = date(1969, 12, 29)  # weeks counted from a Monday make week_start arithmetic exact
_CATEGORIES = ("beauty", "restaurant", "cafe", "bakery", "car_wash", "cinema", "flowers", "grocery", "fitness")

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Scale:
    merchants: int
    customers: int
    purchases: int

    def label(self) -> str:
        return f"{self.merchants:,} merchants / {self.customers:,} customers / {self.purchases:,} purchases"


@dataclass
class SeedInfo:
    """What the measurements need to know about a seeded database (saved next to it as JSON)."""

    backend: str
    database_url: str
    scale: dict
    seconds: float
    password: str
    merchant_slug: str  # the largest merchant
    owner_email: str
    cashier_email: str
    wallet_email: str  # a customer with WALLET_CARDS cards, the same shape at every size
    wallet_cards: int
    wallet_many_email: str  # the customer with the most cards
    wallet_many_cards: int
    checkout_members: list[int] = field(default_factory=list)  # cards at the largest merchant
    counts: dict = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> SeedInfo:
        return cls(**json.loads(path.read_text()))


# --------------------------------------------------------------------------- writers


# Secondary indexes and foreign keys of these tables are dropped while loading and built again
# afterwards: one pass over sorted data instead of a lookup per inserted row.
BULK_TABLES = ("users", "memberships", "consent_records", "purchases", "ledger_entries")


class _SqliteWriter:
    """One transaction of ``executemany`` on a raw connection; durability off while loading."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute("PRAGMA foreign_keys=OFF")
        self.conn.execute("PRAGMA cache_size=-262144")
        self.conn.execute("BEGIN")
        marks = ", ".join("?" for _ in BULK_TABLES)
        self.indexes = self.conn.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({marks})",
            BULK_TABLES,
        ).fetchall()
        for name, _sql in self.indexes:
            self.conn.execute(f'DROP INDEX "{name}"')

    @staticmethod
    def timestamp(seconds: float) -> str:
        # SQLAlchemy's SQLite DateTime text format, naive UTC (UTCDateTime drops the zone).
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    @staticmethod
    def value(value):
        if isinstance(value, datetime):
            return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, dict | list):
            return json.dumps(value)
        return value

    def write(self, table: str, columns: list[str], rows: Iterable[tuple]) -> None:
        marks = ", ".join("?" for _ in columns)
        self.conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    def finish(self, tables: list[str]) -> None:
        for _name, sql in self.indexes:
            self.conn.execute(sql)
        self.conn.execute("COMMIT")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("ANALYZE")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.close()


class _PostgresWriter:
    """``COPY ... FROM STDIN`` per table in one transaction, then sequences moved past the ids."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url)
        self.conn.execute("SET synchronous_commit = off")
        self.conn.execute("SET maintenance_work_mem = '256MB'")
        tables = list(BULK_TABLES)
        # Foreign keys pointing from or to the bulk tables, and their non-key indexes.
        self.constraints = self.conn.execute(
            """SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
               FROM pg_constraint c
               WHERE c.contype = 'f'
                 AND (c.conrelid::regclass::text = ANY(%s) OR c.confrelid::regclass::text = ANY(%s))""",
            (tables, tables),
        ).fetchall()
        self.indexes = self.conn.execute(
            """SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
               FROM pg_index i
               WHERE i.indrelid::regclass::text = ANY(%s) AND NOT i.indisprimary
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)""",
            (tables,),
        ).fetchall()
        for table, name, _definition in self.constraints:
            self.conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _definition in self.indexes:
            self.conn.execute(f"DROP INDEX {name}")

    @staticmethod
    def timestamp(seconds: float) -> datetime:
        return datetime.fromtimestamp(seconds, UTC)

    @staticmethod
    def value(value):
        if isinstance(value, dict | list):
            return json.dumps(value)
        return value

    def write(self, table: str, columns: list[str], rows: Iterable[tuple]) -> None:
        with self.conn.cursor() as cursor, cursor.copy(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)

    def finish(self, tables: list[str]) -> None:
        for _name, definition in self.indexes:
            self.conn.execute(definition)
        for table, name, definition in self.constraints:
            self.conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        self.conn.commit()
        with self.conn.cursor() as cursor:
            for table in tables:
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"COALESCE((SELECT max(id) FROM {table}), 1), "
                    f"(SELECT max(id) FROM {table}) IS NOT NULL)"
                )
        self.conn.commit()
        self.conn.autocommit = True
        self.conn.execute("ANALYZE")
        self.conn.close()


def _column_plan(table, provided: list[str], adapt) -> tuple[list[str], tuple]:
    """Every column of ``table``: the provided ones first, the rest filled from their defaults.

    The models' defaults live in Python, not in the database, so a bulk insert must supply them;
    a new NOT NULL column without a default stops the seeder with a clear message.
    """
    rest, values = [], []
    for column in table.columns:
        if column.name in provided:
            continue
        value = None
        default = column.default
        if default is not None:
            value = default.arg(None) if default.is_callable else default.arg
        if value is None and not column.nullable:
            raise RuntimeError(f"bench seeder: give {table.name}.{column.name} a value")
        rest.append(column.name)
        values.append(adapt(value))
    unknown = set(provided) - {column.name for column in table.columns}
    if unknown:
        raise RuntimeError(f"bench seeder: {table.name} has no columns {sorted(unknown)}")
    return provided + rest, tuple(values)


# --------------------------------------------------------------------------- the simulation


@dataclass
class _History:
    """The simulated sales (parallel arrays, one slot per purchase in time order) and cards."""

    times: array  # unix seconds
    merchants: array  # merchant index
    cards: array  # card index
    amounts: array
    points: array
    earned: array
    card_keys: list[tuple[int, int]]  # card index -> (merchant index, customer index)
    card_first: array
    card_last: array
    card_visits: array
    card_spent: array
    card_balance: array
    weekly: dict[tuple[int, int], list[int]]  # (merchant, week number) -> figures


@dataclass(frozen=True)
class _Merchants:
    cashback_bp: list[int]
    max_share: list[int]
    base_price: list[int]
    pool: list[int]
    offset: list[int]
    cumulative: list[float]  # over merchants 1.. (merchant 0 is chosen by BIG_SHARE)


# Indexes into a weekly figures list.
_W_PURCHASES, _W_REVENUE, _W_PAID, _W_EARNED, _W_REDEEMED, _W_NEW, _W_REPEAT = range(7)


def _merchant_plan(scale: Scale) -> _Merchants:
    rng = random.Random(SEED)
    count = scale.merchants
    weights = [1 / (rank + 1) ** 0.7 for rank in range(count - 1)]
    total = sum(weights) or 1.0
    expected = [scale.purchases * BIG_SHARE] + [
        scale.purchases * (1 - BIG_SHARE) * weight / total for weight in weights
    ]
    # About four visits per card: a merchant's clientele grows with its sales.
    pool = [max(8, min(scale.customers - 1, int(sales / 4))) for sales in expected]
    offset, running = [], 0
    for size in pool:
        offset.append(running % scale.customers)
        running += size
    cumulative, acc = [], 0.0
    for weight in weights:
        acc += weight / total
        cumulative.append(acc)
    return _Merchants(
        cashback_bp=[rng.choice((300, 500, 700, 1000)) for _ in range(count)],
        max_share=[rng.choice((20, 30, 50, 100)) for _ in range(count)],
        base_price=[rng.choice((800, 1500, 3000, 6000)) * 100 for _ in range(count)],
        pool=pool,
        offset=offset,
        cumulative=cumulative,
    )


def _week(seconds: float) -> int:
    return (int(seconds // 86400) - (_EPOCH_MONDAY - date(1970, 1, 1)).days) // 7


def _week_start(week: int) -> date:
    return _EPOCH_MONDAY + timedelta(weeks=week)


def _simulate(scale: Scale, plan: _Merchants, now: float) -> _History:
    """Sales in time order; points spent from the running balance exactly as the till allows."""
    rng = random.Random(SEED + 1)
    span = HISTORY_DAYS * 86400
    start = now - span
    times = array("d", sorted(start + rng.random() * span for _ in range(scale.purchases)))
    n = scale.purchases
    merchants, cards = array("i", bytes(4 * n)), array("i", bytes(4 * n))
    amounts, points_used, earned_points = array("q", bytes(8 * n)), array("q", bytes(8 * n)), array("q", bytes(8 * n))
    card_index: dict[tuple[int, int], int] = {}
    card_keys: list[tuple[int, int]] = []
    first, last, visits, spent, balance = array("d"), array("d"), array("q"), array("q"), array("q")
    weekly: dict[tuple[int, int], list[int]] = {}
    cumulative, last_other = plan.cumulative, scale.merchants - 1
    random_ = rng.random
    for i in range(n):
        moment = times[i]
        if scale.merchants == 1 or random_() < BIG_SHARE:
            merchant = 0
        else:
            merchant = 1 + min(bisect.bisect_left(cumulative, random_()), last_other - 1)
        slot = int(plan.pool[merchant] * random_() ** 2)  # low slots are the regulars
        customer = 1 + (plan.offset[merchant] + slot) % (scale.customers - 1)
        if random_() < WALLET_SHARE:
            # Customer 0 is the measured wallet: always WALLET_CARDS cards, history growing with
            # the data set, so its page shows whether it reads everything or a bounded slice.
            customer, merchant = 0, i % WALLET_CARDS
        amount = plan.base_price[merchant] * (2 + int(random_() * 7)) // 4
        wants_points = random_() < POINTS_SHARE
        key = (merchant, customer)
        card = card_index.get(key)
        week = _week(moment)
        figures = weekly.get((merchant, week))
        if figures is None:
            figures = weekly[(merchant, week)] = [0] * 7
        if card is None:
            card = card_index[key] = len(card_keys)
            card_keys.append(key)
            first.append(moment - 600)  # joined at the till, ten minutes before paying
            last.append(moment)
            visits.append(0)
            spent.append(0)
            balance.append(0)
            joined_week = _week(moment - 600)
            joined = figures if joined_week == week else weekly.setdefault((merchant, joined_week), [0] * 7)
            joined[_W_NEW] += 1
        points = 0
        if wants_points:
            limit = points_limit(amount, plan.max_share[merchant], POINT_VALUE)
            available = balance[card]
            if available >= 100 and limit >= 100:
                points = min(available, limit)
                points -= points % 100
        paid = amount - points
        earned = points_earned(paid, plan.cashback_bp[merchant], POINT_VALUE)
        balance[card] += earned - points
        visits[card] += 1
        spent[card] += amount
        last[card] = moment
        merchants[i], cards[i], amounts[i], points_used[i], earned_points[i] = merchant, card, amount, points, earned
        figures[_W_PURCHASES] += 1
        figures[_W_REVENUE] += amount
        figures[_W_PAID] += paid
        figures[_W_EARNED] += earned
        figures[_W_REDEEMED] += points
        if visits[card] == 2:
            figures[_W_REPEAT] += 1
    return _History(
        times, merchants, cards, amounts, points_used, earned_points, card_keys, first, last,
        visits, spent, balance, weekly,
    )


# --------------------------------------------------------------------------- seeding


def _card_codes(count: int) -> list[str]:
    from webapp.services import codes

    seen: set[str] = set()
    result = []
    while len(result) < count:
        code = codes.generate(10)
        if code not in seen:
            seen.add(code)
            result.append(code)
    return result


def _join_codes(count: int) -> list[str]:
    from webapp.services import codes

    seen: set[str] = set()
    while len(seen) < count:
        seen.add(codes.short_code(8))
    return sorted(seen)


def _fingerprint(membership_id: int, amount: int, points: int) -> str:
    # PurchaseDraft.fingerprint() for a sale without plugin options.
    payload = json.dumps([membership_id, amount, points, {}], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def create_schema(database_url: str) -> None:
    """Every table the app (with its configured plugins) defines, on an empty database."""
    from webapp import create_app
    from webapp.extensions import db

    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "bench"})
    with app.app_context():
        db.create_all()
        db.session.remove()
        db.engine.dispose()


def seed(database_url: str, backend: str, scale: Scale, echo: Echo = print) -> SeedInfo:
    """Fill an empty database with ``scale``; returns what the measurements need to know."""
    from argon2 import PasswordHasher

    from webapp.extensions import db

    started = time.perf_counter()
    create_schema(database_url)
    tables = {table.name: table for table in db.metadata.sorted_tables}
    if backend == "sqlite":
        writer: _SqliteWriter | _PostgresWriter = _SqliteWriter(database_url.removeprefix("sqlite:///"))
    else:
        writer = _PostgresWriter(database_url.replace("postgresql+psycopg://", "postgresql://"))
    ts, adapt = writer.timestamp, writer.value
    now = float(int(time.time()))
    opened = now - (HISTORY_DAYS + 30) * 86400

    def write(table: str, provided: list[str], rows: Iterator[tuple]) -> None:
        columns, filler = _column_plan(tables[table], provided, adapt)
        writer.write(table, columns, (row + filler for row in rows))

    plan = _merchant_plan(scale)
    step = time.perf_counter()
    history = _simulate(scale, plan, now)
    echo(f"    simulated {scale.purchases:,} sales in {time.perf_counter() - step:.1f} s")

    m_count, c_count = scale.merchants, scale.customers
    owner_id = lambda merchant: 2 + merchant  # noqa: E731 - ids are laid out, not looked up
    cashier_id = lambda merchant: 2 + m_count + merchant  # noqa: E731
    customer_id = lambda customer: 2 + 2 * m_count + customer  # noqa: E731
    slug = lambda merchant: f"bench-{merchant + 1:04d}"  # noqa: E731

    step = time.perf_counter()
    password_hash = PasswordHasher().hash(PASSWORD)  # once: argon2id costs ~100 ms
    codes = _card_codes(1 + 2 * m_count + c_count)
    created = ts(opened)
    users = [(1, "operator@bench-network.kz", password_hash, "Bench Operator", None, codes[0], created)]
    for merchant in range(m_count):
        users.append((owner_id(merchant), f"owner@{slug(merchant)}.kz", password_hash,
                      f"Owner {merchant + 1}", None, codes[owner_id(merchant) - 1], created))
    for merchant in range(m_count):
        users.append((cashier_id(merchant), f"cashier@{slug(merchant)}.kz", password_hash,
                      f"Cashier {merchant + 1}", None, codes[cashier_id(merchant) - 1], created))
    write("users", ["id", "email", "password_hash", "name", "phone", "card_code", "created_at"], iter(users))
    write(
        "users", ["id", "email", "password_hash", "name", "phone", "card_code", "created_at"],
        (
            (customer_id(c), f"customer{c + 1}@bench-customers.kz", password_hash, f"Customer {c + 1}",
             f"+7700{c:07d}", codes[customer_id(c) - 1], created)
            for c in range(c_count)
        ),
    )
    write("networks", ["id", "name", "slug", "currency", "default_locale", "operator_id", "created_at"],
          iter([(1, "Bench Street", "bench-street", "KZT", "ru", 1, created)]))
    join_codes = _join_codes(m_count)
    write(
        "merchants",
        ["id", "network_id", "name", "slug", "category", "description", "address", "opening_hours",
         "status", "cashback_bp", "max_points_share_pct", "join_code", "created_at",
         "approved_at"],
        (
            (m + 1, 1, f"Bench shop {m + 1:04d}", slug(m), _CATEGORIES[m % len(_CATEGORIES)],
             "A shop of the bench data set.", f"Bench Street {m + 1}", "Daily 9:00-21:00",
             "active",
             plan.cashback_bp[m], plan.max_share[m], join_codes[m], created, created)
            for m in range(m_count)
        ),
    )
    write(
        "staff_roles", ["id", "user_id", "merchant_id", "role", "created_at"],
        (
            (2 * m + 1 + (role == "cashier"), owner_id(m) if role == "owner" else cashier_id(m), m + 1, role, created)
            for m in range(m_count) for role in ("owner", "cashier")
        ),
    )
    echo(f"    people and merchants written in {time.perf_counter() - step:.1f} s")

    step = time.perf_counter()
    card_count = len(history.card_keys)
    write(
        "memberships",
        ["id", "user_id", "merchant_id", "balance", "total_spent", "visits", "last_purchase_at",
         "joined_at", "join_source"],
        (
            (k + 1, customer_id(customer), merchant + 1, history.card_balance[k], history.card_spent[k],
             history.card_visits[k], ts(history.card_last[k]), ts(history.card_first[k]), "qr")
            for k, (merchant, customer) in enumerate(history.card_keys)
        ),
    )
    write(
        "consent_records",
        ["id", "user_id", "merchant_id", "purpose", "granted", "text_version", "text", "created_at"],
        (
            (k + 1, customer_id(customer), merchant + 1, "data_processing", adapt(True), CONSENT_VERSION,
             f"I agree that Bench shop {merchant + 1:04d} and the Bench Street network process my "
             "data to run my loyalty card.", ts(history.card_first[k]))
            for k, (merchant, customer) in enumerate(history.card_keys)
        ),
    )
    echo(f"    {card_count:,} cards written in {time.perf_counter() - step:.1f} s")

    step = time.perf_counter()
    stamps = [ts(moment) for moment in history.times]
    write(
        "purchases",
        ["id", "merchant_id", "membership_id", "cashier_id", "amount", "points_used", "points_value",
         "amount_paid", "points_earned", "earn_rate_bp", "idempotency_key", "fingerprint", "created_at"],
        (
            (i + 1, history.merchants[i] + 1, history.cards[i] + 1, cashier_id(history.merchants[i]),
             history.amounts[i], history.points[i], history.points[i],
             history.amounts[i] - history.points[i], history.earned[i],
             plan.cashback_bp[history.merchants[i]], f"seed-{i + 1}",
             _fingerprint(history.cards[i] + 1, history.amounts[i], history.points[i]), stamps[i])
            for i in range(scale.purchases)
        ),
    )
    echo(f"    {scale.purchases:,} purchases written in {time.perf_counter() - step:.1f} s")

    step = time.perf_counter()

    def ledger_rows() -> Iterator[tuple]:
        entry = 0
        for i in range(scale.purchases):
            merchant, card = history.merchants[i], history.cards[i]
            if history.points[i]:
                entry += 1
                yield (entry, card + 1, merchant + 1, "redeem", -history.points[i], ledger_reasons.REDEEM,
                       adapt({"purchase": i + 1}), "core", i + 1, stamps[i])
            if history.earned[i]:
                entry += 1
                yield (entry, card + 1, merchant + 1, "earn", history.earned[i], ledger_reasons.CASHBACK,
                       adapt({"purchase": i + 1, "rate_bp": plan.cashback_bp[merchant]}), "core", i + 1,
                       stamps[i])

    write("ledger_entries",
          ["id", "membership_id", "merchant_id", "kind", "amount", "reason_kind", "reason_params", "source",
           "purchase_id", "created_at"],
          ledger_rows())
    write(
        "merchant_weekly_stats",
        ["id", "merchant_id", "week_start", "purchases", "revenue", "amount_paid", "points_earned",
         "points_redeemed", "new_customers", "repeat_customers"],
        (
            (number, merchant + 1, adapt(_week_start(week)), f[_W_PURCHASES], f[_W_REVENUE], f[_W_PAID],
             f[_W_EARNED], f[_W_REDEEMED], f[_W_NEW], f[_W_REPEAT])
            for number, ((merchant, week), f) in enumerate(sorted(history.weekly.items()), start=1)
        ),
    )
    echo(f"    ledger and weekly figures written in {time.perf_counter() - step:.1f} s")
    step = time.perf_counter()
    writer.finish([name for name, table in tables.items() if "id" in table.columns])
    echo(f"    committed and analysed in {time.perf_counter() - step:.1f} s")

    cards_per_customer: dict[int, int] = {}
    for _merchant, customer in history.card_keys:
        cards_per_customer[customer] = cards_per_customer.get(customer, 0) + 1
    most = max(cards_per_customer, key=lambda c: (cards_per_customer[c], -c))
    big_cards = [
        (k + 1, history.card_balance[k])
        for k, (merchant, _customer) in enumerate(history.card_keys) if merchant == 0
    ]
    big_cards.sort(key=lambda item: -item[1])
    return SeedInfo(
        backend=backend,
        database_url=database_url,
        scale=asdict(scale),
        seconds=round(time.perf_counter() - started, 1),
        password=PASSWORD,
        merchant_slug=slug(0),
        owner_email=f"owner@{slug(0)}.kz",
        cashier_email=f"cashier@{slug(0)}.kz",
        wallet_email="customer1@bench-customers.kz",
        wallet_cards=cards_per_customer.get(0, 0),
        wallet_many_email=f"customer{most + 1}@bench-customers.kz",
        wallet_many_cards=cards_per_customer[most],
        checkout_members=[card for card, _balance in big_cards[:400]],
        counts={
            "users": 1 + 2 * m_count + c_count,
            "cards": card_count,
            "purchases": scale.purchases,
            "largest_merchant_purchases": sum(1 for m in history.merchants if m == 0),
            "wallet_customer_purchases": sum(history.card_visits[k] for k, key in enumerate(history.card_keys) if key[1] == 0),
        },
    )


def check_books(database_url: str) -> dict[str, bool]:
    """The seeded books balance: ledger == balance, counters == purchases, weeks == sums."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    checks = {
        "balance_equals_ledger": """
            SELECT count(*) FROM memberships m LEFT JOIN (
                SELECT membership_id, sum(amount) AS total FROM ledger_entries GROUP BY membership_id
            ) l ON l.membership_id = m.id WHERE m.balance != coalesce(l.total, 0)""",
        "counters_equal_purchases": """
            SELECT count(*) FROM memberships m LEFT JOIN (
                SELECT membership_id, count(*) AS visits, sum(amount) AS spent
                FROM purchases GROUP BY membership_id
            ) p ON p.membership_id = m.id
            WHERE m.visits != coalesce(p.visits, 0) OR m.total_spent != coalesce(p.spent, 0)""",
        "weeks_equal_purchases": """
            SELECT count(*) FROM (
                SELECT merchant_id, sum(amount) AS revenue, sum(points_earned) AS earned,
                       sum(points_used) AS redeemed, count(*) AS n
                FROM purchases GROUP BY merchant_id
            ) p JOIN (
                SELECT merchant_id, sum(revenue) AS revenue, sum(points_earned) AS earned,
                       sum(points_redeemed) AS redeemed, sum(purchases) AS n
                FROM merchant_weekly_stats GROUP BY merchant_id
            ) w ON w.merchant_id = p.merchant_id
            WHERE p.revenue != w.revenue OR p.earned != w.earned OR p.redeemed != w.redeemed
               OR p.n != w.n""",
        "new_customers_equal_cards": """
            SELECT abs((SELECT count(*) FROM memberships)
                       - (SELECT coalesce(sum(new_customers), 0) FROM merchant_weekly_stats))""",
        "repeat_customers_equal_cards": """
            SELECT abs((SELECT count(*) FROM memberships WHERE visits >= 2)
                       - (SELECT coalesce(sum(repeat_customers), 0) FROM merchant_weekly_stats))""",
    }
    with engine.connect() as connection:
        result = {name: connection.execute(text(sql)).scalar() == 0 for name, sql in checks.items()}
    engine.dispose()
    return result

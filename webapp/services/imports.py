"""Bringing a shop's customers over from its previous card program: a CSV is checked (encoding,
delimiter, size, shape), its columns mapped to fields, every row checked in a dry run, then
imported in committed batches of set-based statements that a re-run or a resume cannot repeat.

Each person is keyed per merchant by who they are (phone, else e-mail, else card code); the key
is a unique row in ``customer_import_rows`` written in the batch that creates the card, so
importing the same file twice, resuming a half-done import or two workers racing change nothing
the second time. Imported balances are ``adjust`` ledger entries ("Imported from the previous
program") posted through ``ledger.post``: the ledger stays the truth.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time

from flask_babel import gettext as _
from flask_babel import lazy_gettext
from sqlalchemy import any_, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp import ledger_reasons
from webapp.contracts import LedgerReason
from webapp.errors import ValidationFailed
from webapp.formatting import parse_money
from webapp.models import (
    ConsentRecord,
    CustomerImport,
    CustomerImportRow,
    Membership,
    Merchant,
    User,
)
from webapp.models.base import utcnow
from webapp.services import accounts, codes, ledger, phones
from webapp.services.memberships import DATA_PROCESSING, MARKETING
from webapp.services.points import BIRTHDAY
from webapp.timezones import network_zone
from webapp.unit_of_work import unit_of_work

log = logging.getLogger(__name__)

IMPORT_REASON = LedgerReason(ledger_reasons.IMPORTED)
CONSENT_VERSION = "imported"
BATCH_SIZE = 2000
MAX_COLUMNS = 50
MAX_LINE_CHARS = 20_000
MAX_CELL_CHARS = 255
MAX_ROWS = 500_000
MAX_BALANCE = 100_000_000
MAX_TOTAL_SPENT = 2_000_000_000
PREVIEW_ROWS = 5
LISTED_PROBLEMS = 1000

FIELDS = ("name", "phone", "email", "card_code", "balance", "birthday", "total_spent", "consent_date")
FIELD_LABELS = {
    "name": lazy_gettext("Name"),
    "phone": lazy_gettext("Phone"),
    "email": lazy_gettext("E-mail"),
    "card_code": lazy_gettext("Card code"),
    "balance": lazy_gettext("Points balance"),
    "birthday": lazy_gettext("Birthday"),
    "total_spent": lazy_gettext("Total spent"),
    "consent_date": lazy_gettext("Consent given on"),
}
# Header words (English and Russian) each field is recognised by, most specific first.
_HEADER_WORDS = {
    "email": ("e-mail", "email", "mail", "почта", "эл. почта"),
    "phone": ("phone", "mobile", "tel", "телефон", "тел", "моб"),
    "card_code": ("card", "карта", "номер карты", "код карты"),
    "balance": ("points", "balance", "bonus", "балл", "бонус", "баланс"),
    "birthday": ("birthday", "birth", "день рождения", "дата рождения", "др"),
    "total_spent": ("spent", "total", "turnover", "сумма", "потрачено", "оборот"),
    "consent_date": ("consent", "agreed", "согласие"),
    "name": ("name", "customer", "client", "имя", "фио", "клиент", "покупатель"),
}
_CARD_CODE = re.compile(r"[A-Z0-9-]{1,16}")


class ImportRejected(ValidationFailed):
    """This file cannot be imported."""


# --------------------------------------------------------------------------- reading the file


@dataclass(frozen=True)
class Upload:
    """A decoded upload: its text and how it was written."""

    text: str
    encoding: str
    delimiter: str
    header: list[str]
    rows: int
    preview: list[list[str]]


def decode(data: bytes) -> tuple[str, str]:
    """The text of an upload and its encoding: UTF-8 (with or without BOM), else Windows-1251.

    Anything with NUL bytes or control characters is refused as not a CSV file.
    """
    if not data.strip():
        raise ImportRejected(_("The file is empty."))
    if b"\x00" in data:
        raise ImportRejected(_("This is not a CSV file (it looks like a binary file such as a "
                               "spreadsheet or an image). Save it as CSV and upload that."))
    try:
        text, encoding = data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        try:
            text, encoding = data.decode("cp1251"), "windows-1251"
        except UnicodeDecodeError:
            raise ImportRejected(_("The file is neither UTF-8 nor Windows-1251 text.")) from None
    sample = text[:65536]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\r\n")
    if controls > len(sample) // 100:
        raise ImportRejected(_("This is not a CSV file (it looks like a binary file such as a "
                               "spreadsheet or an image). Save it as CSV and upload that."))
    return text, encoding


def sniff_delimiter(text: str) -> str:
    """Comma or semicolon, whichever splits the header and first lines consistently."""
    sample = "\n".join(text.splitlines()[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;").delimiter
    except csv.Error:
        first = text.splitlines()[0] if text else ""
        return ";" if first.count(";") > first.count(",") else ","


def _check_shape(text: str) -> None:
    """Refuse a CSV bomb before the csv module builds anything big from it."""
    for number, line in enumerate(io.StringIO(text), start=1):
        if len(line) > MAX_LINE_CHARS:
            raise ImportRejected(_(
                "Line %(line)s is longer than %(limit)s characters: this does not look like a "
                "customer list.", line=number, limit=MAX_LINE_CHARS,
            ))


def iter_records(text: str, delimiter: str) -> Iterator[list[str]]:
    """The CSV's records (header first), refusing huge fields and too many columns clearly."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        for record in reader:
            if len(record) > MAX_COLUMNS:
                raise ImportRejected(_(
                    "Line %(line)s has %(count)s columns; a customer list has at most %(limit)s.",
                    line=reader.line_num, count=len(record), limit=MAX_COLUMNS,
                ))
            yield record
    except csv.Error as error:
        raise ImportRejected(_(
            "The file is not a readable CSV near line %(line)s (%(error)s).",
            line=reader.line_num, error=str(error),
        )) from None


def read_upload(data: bytes) -> Upload:
    """Decode, sniff and measure an upload; raises ``ImportRejected`` with a message."""
    text, encoding = decode(data)
    _check_shape(text)
    delimiter = sniff_delimiter(text)
    header: list[str] | None = None
    preview: list[list[str]] = []
    rows = 0
    for record in iter_records(text, delimiter):
        if header is None:
            header = [cell.strip() for cell in record]
            continue
        if not any(cell.strip() for cell in record):
            continue
        rows += 1
        if rows > MAX_ROWS:
            raise ImportRejected(_("At most %(limit)s customers per file; split it.", limit=MAX_ROWS))
        if len(preview) < PREVIEW_ROWS:
            preview.append(record)
    if not header or not any(header):
        raise ImportRejected(_("The first line must name the columns (name, phone, e-mail, ...)."))
    if rows == 0:
        raise ImportRejected(_("The file has a header line but no customers."))
    return Upload(text, encoding, delimiter, header, rows, preview)


def guess_mapping(header: list[str]) -> list[str]:
    """A field for each column from its header word ("" when none fits); each field used once."""
    mapping = [""] * len(header)
    taken: set[str] = set()
    folded = [" ".join(cell.lower().replace("_", " ").split()) for cell in header]
    for exact in (True, False):
        for name, words in _HEADER_WORDS.items():
            if name in taken:
                continue
            for index, cell in enumerate(folded):
                if mapping[index] or not cell:
                    continue
                if any(cell == word if exact else word in cell for word in words):
                    mapping[index] = name
                    taken.add(name)
                    break
    return mapping


def clean_mapping(header: list[str], chosen: list[str]) -> list[str]:
    """The owner's mapping checked: known fields, each at most once, something to know people by."""
    mapping = [(value if value in FIELDS else "") for value in chosen[: len(header)]]
    mapping += [""] * (len(header) - len(mapping))
    used = [value for value in mapping if value]
    for value in set(used):
        if used.count(value) > 1:
            raise ValidationFailed(_("“%(field)s” is chosen for more than one column.",
                                     field=FIELD_LABELS[value]))
    if not {"phone", "email", "card_code"} & set(used):
        raise ValidationFailed(_("Choose the column with the phone, the e-mail or the card code: "
                                 "that is how each person is recognised."))
    return mapping


def create_upload(
    session: Session, merchant: Merchant, user: User | None, filename: str, data: bytes,
) -> CustomerImport:
    """Store a checked upload with a guessed mapping (status ``uploaded``)."""
    upload = read_upload(data)
    job = CustomerImport(
        merchant_id=merchant.id, created_by_id=user.id if user else None,
        filename=(filename or "")[:255], encoding=upload.encoding, delimiter=upload.delimiter,
        content=upload.text, header=upload.header, mapping=guess_mapping(upload.header),
        total_rows=upload.rows, status="uploaded",
    )
    with unit_of_work(session):
        session.add(job)
    return job


def preview_rows(job: CustomerImport) -> list[list[str]]:
    rows = []
    for record in data_records(job):
        rows.append(record[1])
        if len(rows) >= PREVIEW_ROWS:
            break
    return rows


def data_records(job: CustomerImport) -> Iterator[tuple[int, list[str]]]:
    """(line number in the file, cells) of each non-blank data row."""
    records = iter_records(job.content, job.delimiter)
    next(records, None)
    line = 1
    for record in records:
        line += 1
        if any(cell.strip() for cell in record):
            yield line, record


# --------------------------------------------------------------------------- checking rows


@dataclass
class Row:
    """One data row read through the mapping, with what is wrong with it (in words)."""

    index: int  # 0-based among data rows: progress counts these
    line: int  # the line in the file, as the owner sees it in a spreadsheet
    name: str = ""
    phone: str | None = None
    email: str | None = None
    card_code: str | None = None
    balance: int = 0
    total_spent: int = 0
    birthday: str | None = None
    consent_date: date | None = None
    key: str = ""
    problems: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)

    def fail(self, kind: str, message: str) -> None:
        self.kinds.append(kind)
        self.problems.append(message)

    @property
    def text(self) -> str:
        return "; ".join(self.problems)


PROBLEM_KINDS = {
    "phone": lazy_gettext("bad phone number"),
    "email": lazy_gettext("bad e-mail address"),
    "identity": lazy_gettext("nobody to recognise"),
    "duplicate": lazy_gettext("duplicate in the file"),
    "balance": lazy_gettext("bad or negative points balance"),
    "spent": lazy_gettext("bad total spent"),
    "date": lazy_gettext("bad date"),
    "card": lazy_gettext("bad card code"),
    "name": lazy_gettext("name too long"),
    "too_long": lazy_gettext("value too long"),
    "conflict": lazy_gettext("phone and e-mail of two different accounts"),
    "member": lazy_gettext("already your customer"),
}


def _parse_date(text: str, *, year_optional: bool = False) -> str | None:
    """ISO ``YYYY-MM-DD`` (or ``--MM-DD`` without a year) from the usual ways of writing a date."""
    text = text.strip()
    for pattern, order in (
        (r"(\d{4})-(\d{1,2})-(\d{1,2})", "ymd"),
        (r"(\d{1,2})[./](\d{1,2})[./](\d{4})", "dmy"),
        (r"(\d{1,2})[./](\d{1,2})", "dm"),
    ):
        match = re.fullmatch(pattern, text)
        if not match:
            continue
        parts = dict(zip(order, (int(group) for group in match.groups()), strict=True))
        if "y" not in parts:
            if not year_optional:
                return None
            try:
                date(2000, parts["m"], parts["d"])  # a leap year: 29 February is a birthday
            except ValueError:
                return None
            return f"--{parts['m']:02d}-{parts['d']:02d}"
        try:
            return date(parts["y"], parts["m"], parts["d"]).isoformat()
        except ValueError:
            return None
    return None


def _cell(record: list[str], mapping: dict[str, int], name: str) -> str:
    index = mapping.get(name)
    if index is None or index >= len(record):
        return ""
    return record[index].strip()


def check_row(
    index: int, line: int, record: list[str], columns: dict[str, int], region: str | None,
    currency: str, today: date,
) -> Row:
    """Read one record through the mapping; every problem is named in the owner's words."""
    row = Row(index=index, line=line)
    if any(len(cell) > MAX_CELL_CHARS for cell in record):
        row.fail("too_long", _("a value is longer than %(limit)s characters", limit=MAX_CELL_CHARS))
        return row
    row.name = " ".join(_cell(record, columns, "name").split())
    if len(row.name) > 120:
        row.fail("name", _("the name is longer than 120 characters"))
    phone_text = _cell(record, columns, "phone")
    if phone_text:
        row.phone = phones.parse_or_none(phone_text, region)
        if row.phone is None:
            row.fail("phone", _("bad phone number “%(value)s”", value=phone_text))
    email_text = _cell(record, columns, "email")
    if email_text:
        try:
            row.email = accounts.normalize_email(email_text)
        except ValidationFailed:
            row.fail("email", _("bad e-mail address “%(value)s”", value=email_text))
    card_text = "".join(_cell(record, columns, "card_code").split()).upper()
    if card_text:
        if _CARD_CODE.fullmatch(card_text):
            row.card_code = card_text
        else:
            row.fail("card", _("bad card code “%(value)s” (letters, digits and dashes, at most 16)",
                               value=card_text))
    balance_text = _cell(record, columns, "balance").replace(" ", "").replace("\u00a0", "")
    if balance_text:
        try:
            row.balance = int(balance_text)
        except ValueError:
            row.fail("balance", _("the points balance “%(value)s” is not a whole number",
                                  value=balance_text))
        else:
            if row.balance < 0:
                row.fail("balance", _("negative points balance %(value)s", value=balance_text))
            elif row.balance > MAX_BALANCE:
                row.fail("balance", _("the points balance %(value)s is implausibly large",
                                      value=balance_text))
    spent_text = _cell(record, columns, "total_spent")
    if spent_text:
        try:
            row.total_spent = parse_money(spent_text, currency)
        except ValueError:
            row.fail("spent", _("the total spent “%(value)s” is not an amount", value=spent_text))
        else:
            if not 0 <= row.total_spent <= MAX_TOTAL_SPENT:
                row.fail("spent", _("the total spent “%(value)s” is out of range", value=spent_text))
    birthday_text = _cell(record, columns, "birthday")
    if birthday_text:
        row.birthday = _parse_date(birthday_text, year_optional=True)
        if row.birthday is None or (row.birthday[:1] != "-" and row.birthday > today.isoformat()):
            row.birthday = None
            row.fail("date", _("bad birthday “%(value)s” (write 31.12.1990 or 31.12)",
                               value=birthday_text))
    consent_text = _cell(record, columns, "consent_date")
    if consent_text:
        parsed = _parse_date(consent_text)
        if parsed is None or parsed > today.isoformat():
            row.fail("date", _("bad consent date “%(value)s” (write 31.12.2024)", value=consent_text))
        else:
            row.consent_date = date.fromisoformat(parsed)
    if row.phone:
        row.key = "phone:" + row.phone
    elif row.email:
        row.key = "email:" + row.email
    elif row.card_code:
        row.key = "card:" + row.card_code
    elif not (phone_text or email_text or card_text):
        row.fail("identity", _("no phone, e-mail or card code to recognise the person by"))
    return row


def row_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def check_file(job: CustomerImport, merchant: Merchant, today: date | None = None) -> list[Row]:
    """Every data row checked on its own and against the rows above it (the first wins)."""
    columns = {name: index for index, name in enumerate(job.mapping) if name}
    region = phones.merchant_region(merchant)
    currency = merchant.network.currency
    today = today or utcnow().astimezone(network_zone(merchant.network)).date()
    rows: list[Row] = []
    seen: dict[str, int] = {}
    for index, (line, record) in enumerate(data_records(job)):
        row = check_row(index, line, record, columns, region, currency, today)
        for value in (row.phone, row.email, row.card_code):
            if value is None:
                continue
            if value in seen and not row.kinds:
                row.fail("duplicate", _("the same person as on line %(line)s (%(value)s)",
                                        line=seen[value], value=value))
        if not row.kinds:
            for value in (row.phone, row.email, row.card_code):
                if value is not None:
                    seen.setdefault(value, line)
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- against the database


@dataclass
class Plan:
    """What a batch of good rows would do: create, link, skip (imported before) or refuse."""

    create: list[Row] = field(default_factory=list)
    link: list[tuple[Row, int]] = field(default_factory=list)
    skip: list[Row] = field(default_factory=list)
    refuse: list[Row] = field(default_factory=list)
    free_codes: set[str] = field(default_factory=set)


def _in_batches(session: Session, column, values: list) -> Iterator:
    """``column IN values`` as few statements as the database allows: one ``= ANY(array)`` with a
    single parameter on PostgreSQL (a long IN list costs more to send and parse than to run),
    IN lists under SQLite's parameter limit elsewhere."""
    if not values:
        return
    if session.get_bind().dialect.name == "postgresql":
        yield column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
        return
    for start in range(0, len(values), 900):
        yield column.in_(values[start : start + 900])


def plan_batch(session: Session, merchant: Merchant, rows: list[Row]) -> Plan:
    """Look the batch's good rows up in a few set-based queries and decide each one."""
    plan = Plan()
    good = [row for row in rows if not row.kinds]
    keys = {row_key(row.key): row for row in good}
    done: set[str] = set()
    for condition in _in_batches(session, CustomerImportRow.row_key, list(keys)):
        done.update(session.scalars(select(CustomerImportRow.row_key).where(
            CustomerImportRow.merchant_id == merchant.id, condition)))
    by_phone: dict[str, int] = {}
    by_email: dict[str, int] = {}
    phones_wanted = [row.phone for row in good if row.phone]
    emails_wanted = [row.email for row in good if row.email]
    for condition in _in_batches(session, User.phone, phones_wanted):
        by_phone.update(session.execute(select(User.phone, User.id).where(condition)).all())
    for condition in _in_batches(session, User.email, emails_wanted):
        by_email.update(session.execute(select(User.email, User.id).where(condition)).all())
    existing_ids = set(by_phone.values()) | set(by_email.values())
    members: set[int] = set()
    for condition in _in_batches(session, Membership.user_id, list(existing_ids)):
        members.update(session.scalars(select(Membership.user_id).where(
            Membership.merchant_id == merchant.id, condition)))
    codes_wanted = [row.card_code for row in good if row.card_code]
    taken_codes: set[str] = set()
    for condition in _in_batches(session, User.card_code, codes_wanted):
        taken_codes.update(session.scalars(select(User.card_code).where(condition)))
    plan.free_codes = set(codes_wanted) - taken_codes
    for key, row in keys.items():
        if key in done:
            plan.skip.append(row)
            continue
        phone_user = by_phone.get(row.phone) if row.phone else None
        email_user = by_email.get(row.email) if row.email else None
        if phone_user and email_user and phone_user != email_user:
            row.fail("conflict", _("the phone is another Neighbourly account's than the e-mail"))
            plan.refuse.append(row)
            continue
        user_id = phone_user or email_user
        if user_id and user_id in members:
            row.fail("member", _("already your customer on Neighbourly; not imported again"))
            plan.refuse.append(row)
        elif user_id:
            plan.link.append((row, user_id))
        else:
            plan.create.append(row)
    return plan


@dataclass
class DryRun:
    """The outcome of checking a whole file, without writing anything."""

    total: int = 0
    create: int = 0
    link: int = 0
    skip: int = 0
    failed: int = 0
    points: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[Row] = field(default_factory=list)

    @property
    def importable(self) -> int:
        return self.create + self.link

    @property
    def more_problems(self) -> int:
        return max(self.failed - len(self.problems), 0)

    def as_json(self) -> dict:
        """What the page shows, kept with the import (problems as line and words)."""
        return {
            "total": self.total, "create": self.create, "link": self.link, "skip": self.skip,
            "failed": self.failed, "points": self.points, "counts": dict(self.counts),
            "problems": [{"line": row.line, "text": row.text} for row in self.problems],
        }

    @classmethod
    def from_json(cls, data: dict) -> DryRun:
        return cls(
            total=data["total"], create=data["create"], link=data["link"], skip=data["skip"],
            failed=data["failed"], points=data["points"], counts=data["counts"],
            problems=[_Problem(item["line"], item["text"]) for item in data["problems"]],
        )


@dataclass(frozen=True)
class _Problem:
    line: int
    text: str


def dry_run(session: Session, merchant: Merchant, job: CustomerImport) -> DryRun:
    """Check every row (shape, values, duplicates, the database) and count what would happen."""
    result = DryRun()
    rows = check_file(job, merchant)
    result.total = len(rows)
    for start in range(0, len(rows), BATCH_SIZE):
        batch = rows[start : start + BATCH_SIZE]
        plan = plan_batch(session, merchant, batch)
        result.create += len(plan.create)
        result.link += len(plan.link)
        result.skip += len(plan.skip)
        result.points += sum(row.balance for row in plan.create) + sum(row.balance for row, _ in plan.link)
    for row in rows:
        if row.kinds:
            result.failed += 1
            for kind in set(row.kinds):
                result.counts[kind] = result.counts.get(kind, 0) + 1
            if len(result.problems) < LISTED_PROBLEMS:
                result.problems.append(row)
    session.rollback()  # nothing was written; end the read transaction
    return result


INLINE_CHECK_ROWS = 5000  # larger files are dry-run by the task queue, not in the request


def set_mapping(session: Session, job: CustomerImport, chosen: list[str]) -> CustomerImport:
    """Keep the owner's mapping; the dry run has to be (re)done (status ``checking``)."""
    if job.status not in ("uploaded", "checking", "checked"):
        raise ValidationFailed(_("This import has started; its columns cannot change any more."))
    with unit_of_work(session):
        job.mapping = clean_mapping(job.header, chosen)
        job.status = "checking"
        job.check_summary = None
    return job


def check(session: Session, job_id: int) -> DryRun | None:
    """Run the dry run of ``job_id`` and keep its outcome with it (status ``checked``)."""
    job = session.get(CustomerImport, job_id)
    if job is None or job.status != "checking":
        return None
    merchant = session.get(Merchant, job.merchant_id)
    result = dry_run(session, merchant, job)
    with unit_of_work(session):
        job = session.get(CustomerImport, job_id)
        job.check_summary = result.as_json()
        job.status = "checked"
    return result


def request_check(session: Session, job: CustomerImport) -> None:
    """Dry-run a small file now; hand a large one to the task queue (the page polls)."""
    from webapp import tasks

    job_id, small = job.id, job.total_rows <= INLINE_CHECK_ROWS
    if small:
        check(session, job_id)
    else:
        session.commit()  # end this request's transaction first: the queue may run the check here
        tasks.check_customer_import(job_id)


def stored_check(job: CustomerImport) -> DryRun | None:
    return DryRun.from_json(job.check_summary) if job.check_summary else None


# --------------------------------------------------------------------------- importing


def _consent_text(merchant: Merchant, on: date) -> str:
    return (f"Consent recorded by {merchant.name} in its previous loyalty program on "
            f"{on.isoformat()} (imported).")


def birthday_parts(text: str | None) -> tuple[int, int, int | None] | None:
    """(day, month, year or None) of an import row's birthday ("1990-12-31" or "--12-31")."""
    if not text:
        return None
    if text.startswith("--"):
        return int(text[5:7]), int(text[2:4]), None
    year, month, day = (int(part) for part in text.split("-"))
    return day, month, year


def _birthday_columns(row: Row) -> dict[str, int | None]:
    """A new person's birthday where one entered by hand lives (``users.birth_*``), when the
    previous program recorded their consent; without it the birthday stays on the import row."""
    parts = birthday_parts(row.birthday) if row.consent_date is not None else None
    day, month, year = parts or (None, None, None)
    return {"birth_day": day, "birth_month": month, "birth_year": year}


def _write_batch(session: Session, merchant: Merchant, job_id: int, plan: Plan) -> int:
    """Create users, cards, ledger entries, consents and import keys for one batch (no commit).

    Returns the points credited.
    """
    now = utcnow()
    zone = network_zone(merchant.network)
    new_users = plan.create
    user_ids: dict[int, int] = {}
    # Plain multi-row INSERTs (executemany: one statement prepared once), then the new ids read
    # back by their unique card codes: several times faster than INSERT ... RETURNING per row.
    if new_users:
        values = []
        code_of: dict[str, int] = {}
        for row in new_users:
            code = row.card_code if row.card_code in plan.free_codes else codes.generate(10)
            plan.free_codes.discard(row.card_code)
            code_of[code] = row.index
            values.append({
                "email": row.email or accounts.placeholder_email(secrets.token_hex(10)),
                "password_hash": "", "name": row.name, "phone": row.phone, "locale": None,
                "card_code": code, "is_platform_admin": False, "created_at": now,
                "imported_at": now, **_birthday_columns(row),
            })
        session.execute(insert(User.__table__), values)
        for condition in _in_batches(session, User.card_code, list(code_of)):
            for user_id, code in session.execute(select(User.id, User.card_code).where(condition)):
                user_ids[code_of[code]] = user_id
    for row, user_id in plan.link:
        user_ids[row.index] = user_id
    rows = new_users + [row for row, _ in plan.link]
    if not rows:
        return 0
    rows.sort(key=lambda row: row.index)
    session.execute(insert(Membership.__table__), [
        {
            "user_id": user_ids[row.index], "merchant_id": merchant.id, "balance": 0,
            "total_spent": row.total_spent, "visits": 0, "joined_at": now, "join_source": "import",
        }
        for row in rows
    ])
    row_of_user = {user_ids[row.index]: row.index for row in rows}
    cards: dict[int, int] = {}
    for condition in _in_batches(session, Membership.user_id, list(row_of_user)):
        for membership_id, user_id in session.execute(select(Membership.id, Membership.user_id).where(
            Membership.merchant_id == merchant.id, condition,
        )):
            cards[row_of_user[user_id]] = membership_id
    postings = [
        ledger.Posting(
            membership_id=cards[row.index], merchant_id=merchant.id, kind="adjust",
            amount=row.balance, reason=IMPORT_REASON, object_ref=f"core:customer_imports:{job_id}",
        )
        for row in rows if row.balance
    ]
    ledger.post(session, postings, now)
    consents = []
    for row in rows:
        if row.consent_date is None:
            continue  # no recorded consent: imported as not contactable
        moment = datetime.combine(row.consent_date, time(12), zone)
        for purpose in (DATA_PROCESSING, MARKETING):
            consents.append({
                "user_id": user_ids[row.index], "merchant_id": merchant.id, "purpose": purpose,
                "granted": True, "text_version": CONSENT_VERSION,
                "text": _consent_text(merchant, row.consent_date), "created_at": moment,
            })
    created = {row.index for row in new_users}
    for row in rows:
        if row.index in created and row.consent_date is not None and row.birthday:
            # The birthday's own consent, as the profile form records it (network-wide).
            consents.append({
                "user_id": user_ids[row.index], "merchant_id": None, "purpose": BIRTHDAY,
                "granted": True, "text_version": CONSENT_VERSION,
                "text": _consent_text(merchant, row.consent_date),
                "created_at": datetime.combine(row.consent_date, time(12), zone),
            })
    if consents:
        session.execute(insert(ConsentRecord.__table__), consents)
    session.execute(insert(CustomerImportRow.__table__), [
        {
            "merchant_id": merchant.id, "import_id": job_id, "row_key": row_key(row.key),
            "row_number": row.line, "user_id": user_ids[row.index],
            "membership_id": cards[row.index], "birthday": row.birthday, "created_at": now,
        }
        for row in rows
    ])
    return sum(row.balance for row in rows)


@dataclass(frozen=True)
class Progress:
    done: int
    total: int


def run(
    session: Session, job_id: int, *, on_progress: Callable[[Progress], None] | None = None,
    batch_size: int = BATCH_SIZE, stop_after: int | None = None,
) -> CustomerImport:
    """Import (or resume) ``job_id`` from its committed ``next_row``, one committed batch at a time.

    Each batch claims its rows with a conditional UPDATE of ``next_row`` in its own transaction;
    a batch that loses that race (another worker did it) or meets an import key written meanwhile
    is rolled back whole and the loop carries on from the committed position. ``stop_after``
    (batches) lets tests and operators interrupt it on purpose.
    """
    job = session.get(CustomerImport, job_id)
    if job is None:
        raise ValidationFailed(_("There is no such import."))
    merchant = session.get(Merchant, job.merchant_id)
    if job.status == "done":
        return job
    if job.status in ("uploaded",):
        raise ValidationFailed(_("Check the columns and the dry run first."))
    with unit_of_work(session):
        session.execute(
            update(CustomerImport).where(CustomerImport.id == job.id)
            .values(status="running", failure="", started_at=func.coalesce(CustomerImport.started_at, utcnow()))
        )
    rows = check_file(job, merchant)
    total = min(job.total_rows, len(rows))
    batches = retries = 0
    while True:
        # Only the committed position is read again (not the file's text) before each batch.
        start = session.scalar(select(CustomerImport.next_row).where(CustomerImport.id == job_id))
        if start >= total:
            break
        batch = rows[start : start + batch_size]
        end = start + len(batch)
        try:
            with unit_of_work(session):
                plan = plan_batch(session, merchant, batch)
                points = _write_batch(session, merchant, job_id, plan)
                claimed = session.execute(
                    update(CustomerImport)
                    .where(CustomerImport.id == job_id, CustomerImport.next_row == start)
                    .values(
                        next_row=end,
                        created_count=CustomerImport.created_count + len(plan.create),
                        linked_count=CustomerImport.linked_count + len(plan.link),
                        skipped_count=CustomerImport.skipped_count + len(plan.skip),
                        failed_count=CustomerImport.failed_count + sum(1 for row in batch if row.kinds),
                        points_imported=CustomerImport.points_imported + points,
                    )
                ).rowcount
                if not claimed:
                    raise _BatchTaken  # rolls the batch back
        except _BatchTaken:
            continue  # another worker committed this batch first
        except IntegrityError as error:
            # A key written meanwhile: the batch was rolled back and is redone from the database.
            retries += 1
            if retries > MAX_RETRIES:
                _fail(session, job_id, error)
                raise
            log.info("import %s: batch at row %s met a concurrent import; retrying", job_id, start)
            continue
        except Exception as error:
            _fail(session, job_id, error)
            raise
        batches += 1
        retries = 0
        if on_progress:
            on_progress(Progress(end, total))
        if stop_after is not None and batches >= stop_after:
            session.refresh(job)
            return job
    with unit_of_work(session):
        session.execute(
            update(CustomerImport).where(CustomerImport.id == job.id, CustomerImport.status != "done")
            .values(status="done", finished_at=utcnow())
        )
    session.refresh(job)
    return job


MAX_RETRIES = 3


class _BatchTaken(Exception):
    """Another worker claimed this batch's rows first."""


def _fail(session: Session, job_id: int, error: Exception) -> None:
    """Stamp the import failed (its committed batches stay; it can be resumed)."""
    with unit_of_work(session):
        session.execute(update(CustomerImport).where(CustomerImport.id == job_id)
                        .values(status="failed", failure=str(error)[:1000]))


def summary_text(job: CustomerImport, merchant: Merchant, link: str) -> str:
    return _(
        "The import of %(file)s into %(merchant)s has finished.\n\n"
        "New customers: %(created)s\nExisting Neighbourly accounts given a card: %(linked)s\n"
        "Imported before, left as they were: %(skipped)s\nRows not imported: %(failed)s\n"
        "Points imported: %(points)s\n\nDetails: %(link)s",
        file=job.filename or "CSV", merchant=merchant.name, created=job.created_count,
        linked=job.linked_count, skipped=job.skipped_count, failed=job.failed_count,
        points=job.points_imported, link=link,
    )


def send_summary(session: Session, job: CustomerImport, link: str) -> None:
    """E-mail the owner who started the import what it did (committed with nothing else)."""
    from webapp.mail import send_email

    merchant = session.get(Merchant, job.merchant_id)
    owner = session.get(User, job.created_by_id) if job.created_by_id else None
    if owner is None or merchant is None or owner.erased_at is not None:
        return
    with unit_of_work(session):
        send_email(
            to=owner.email,
            subject=_("Customer import finished: %(count)s new customers", count=job.created_count),
            text=summary_text(job, merchant, link),
        )


def queue(session: Session, job: CustomerImport) -> CustomerImport:
    """Hand an import (or the rest of one) to the task queue."""
    from webapp import tasks

    if job.status == "done":
        return job
    if job.status in ("uploaded", "checking"):
        raise ValidationFailed(_("Check the columns and the dry run first."))
    job_id = job.id
    with unit_of_work(session):
        job.status = "queued" if job.status in ("checked", "failed") else job.status
    # Nothing is read from ``session`` after the commit: a worker in this process (immediate
    # mode) writes through its own connection, which an open transaction here would block.
    tasks.run_customer_import(job_id)
    return job


def recent(session: Session, merchant: Merchant, limit: int = 10) -> list[CustomerImport]:
    return list(session.scalars(
        select(CustomerImport).where(CustomerImport.merchant_id == merchant.id)
        .order_by(CustomerImport.created_at.desc(), CustomerImport.id.desc()).limit(limit)
    ))


def get(session: Session, merchant: Merchant, import_id: int) -> CustomerImport | None:
    return session.scalar(select(CustomerImport).where(
        CustomerImport.id == import_id, CustomerImport.merchant_id == merchant.id))

"""Recording and refunding purchases: the money path, in hook phases validate/record/commit/after."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import BigInteger, Integer, Row, bindparam, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from webapp import ledger_reasons, outbox, tasks
from webapp.contracts import EarnRate, PurchaseAdjustment
from webapp.errors import (
    AlreadyRefunded,
    IdempotencyConflict,
    InsufficientPoints,
    NeighbourlyError,
    NotFound,
    PurchaseDeclined,
    RefundRefused,
    ValidationFailed,
    is_database_unavailable,
)
from webapp.extensions import per_dialect
from webapp.models import (
    LedgerEntry,
    Membership,
    Merchant,
    PriceItem,
    Purchase,
    PurchaseDecline,
    PurchaseItem,
    User,
)
from webapp.models.base import utcnow
from webapp.plugins import hooks_for, sorted_by_order
from webapp.rules import points_earned, points_limit
from webapp.services.ledger import (
    Posting,
    batched_postings,
    bump_customer_month,
    bump_weekly_stats,
    change_balances,
    credit_expiry,
    insert_entries,
)
from webapp.timezones import network_zone, remember_merchant_zone
from webapp.unit_of_work import unit_of_work

log = logging.getLogger(__name__)

MAX_AMOUNT = 10**12  # minor units; anything larger is a typo, not a sale
MAX_KEY_LENGTH = 80
MAX_LINES = 50  # price-list lines on one bill
MAX_QUANTITY = 999


@dataclass(frozen=True)
class SaleLine:
    """One line of a bill picked from the price list, priced when the cashier picked it."""

    price_item_id: int
    name: str
    unit_price: int  # minor units
    quantity: int

    @property
    def total(self) -> int:
        return self.unit_price * self.quantity


@dataclass
class PurchaseDraft:
    """What the cashier submitted; plugins read it in the validate and record phases."""

    membership_id: int
    amount: int
    points_to_use: int
    idempotency_key: str
    cashier_id: int | None = None
    options: dict[str, Any] = field(default_factory=dict)  # plugin choices, e.g. certificate code
    note: str = ""
    created_at: datetime | None = None  # for imports and demo data; defaults to now
    lines: tuple[SaleLine, ...] = ()  # picked from the price list; ``amount`` is their sum
    # Filled in during the record phase:
    points_value: int = 0
    adjustments: list[PurchaseAdjustment] = field(default_factory=list)

    def fingerprint(self) -> str:
        """What must match for a retried key to replay instead of being refused."""
        fields: list[Any] = [self.membership_id, self.amount, self.points_to_use, self.options]
        if self.lines:  # a sale without lines keeps the fingerprint it always had
            fields.append([[line.price_item_id, line.quantity] for line in self.lines])
        payload = json.dumps(fields, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()

    @property
    def remaining(self) -> int:
        """What is left to pay after points and the adjustments collected so far."""
        return self.amount - self.points_value - sum(a.amount for a in self.adjustments)


@dataclass(frozen=True)
class PurchaseOutcome:
    purchase: Purchase
    replayed: bool = False


@dataclass(frozen=True)
class Quote:
    """What the till shows once a customer and an amount are known."""

    max_points: int
    earn_rate_bp: int
    earn_rate_label: str
    balance: int


def priced_lines(
    session: Session, merchant: Merchant, picks: list[tuple[int, int]]
) -> tuple[SaleLine, ...]:
    """The picked price-list items ``(item id, quantity)`` of this merchant as priced lines, in
    the merchant's list order (one SELECT; none without picks). The same item picked twice adds
    up. Raises ``ValidationFailed`` for a quantity out of range, too many lines, or an item that
    is not in this merchant's price list (another merchant's, or deleted since)."""
    if not picks:
        return ()
    quantities: dict[int, int] = {}
    for item_id, quantity in picks:
        if not 1 <= quantity <= MAX_QUANTITY:
            raise ValidationFailed(
                _("A quantity is a whole number from 1 to %(max)s.", max=MAX_QUANTITY),
                code="bad_quantity",
            )
        quantities[item_id] = quantities.get(item_id, 0) + quantity
    if len(quantities) > MAX_LINES:
        raise ValidationFailed(
            _("At most %(count)s price-list items on one bill.", count=MAX_LINES), code="too_many_items"
        )
    if any(quantity > MAX_QUANTITY for quantity in quantities.values()):
        raise ValidationFailed(
            _("A quantity is a whole number from 1 to %(max)s.", max=MAX_QUANTITY), code="bad_quantity"
        )
    rows = session.execute(
        select(PriceItem.id, PriceItem.name, PriceItem.price)
        .where(PriceItem.merchant_id == merchant.id, PriceItem.id.in_(list(quantities)))
        .order_by(PriceItem.position, PriceItem.id)
    ).all()
    if len(rows) != len(quantities):
        raise ValidationFailed(
            _("An item picked is not in this price list (it may have been removed); pick again."),
            code="unknown_item",
        )
    return tuple(SaleLine(row.id, row.name, row.price, quantities[row.id]) for row in rows)


def lines_total(lines: tuple[SaleLine, ...]) -> int:
    return sum(line.total for line in lines)


def earn_rate(merchant: Merchant, membership: Membership) -> EarnRate:
    """The best of the merchant's base rate and any rate a plugin offers this customer."""
    best = EarnRate(basis_points=merchant.cashback_bp, source="core", label="")
    for offer in sorted_by_order(
        hooks_for(merchant).neighbourly_collect_earn_rates(merchant=merchant, membership=membership)
    ):
        if offer.basis_points > best.basis_points:
            best = offer
    return best


def max_points_for(merchant: Merchant, membership: Membership, amount: int) -> int:
    """Most points usable on a bill: the merchant's share limit, capped by the balance."""
    if amount <= 0:
        return 0
    by_share = points_limit(amount, merchant.max_points_share_pct, merchant.network.point_value_minor)
    return max(0, min(membership.balance, by_share))


@dataclass(frozen=True)
class SaleFigures:
    """What a sale records: the bill less points and plugins' adjustments, and the points earned."""

    amount: int
    points_used: int
    points_value: int
    adjustments: tuple[PurchaseAdjustment, ...]
    certificate_value: int
    discount: int
    amount_paid: int
    points_earned: int
    rate: EarnRate


def sale_figures(
    session: Session, merchant: Merchant, membership: Membership, draft: PurchaseDraft
) -> SaleFigures:
    """The one computation of a sale's money: the sale calls it inside its transaction and the
    till's quote calls it inside a rolled-back savepoint, so the cashier is told what happens.

    Plugins' adjustments may write (rows that roll back with the sale or the quote); they are
    capped at what is left of the bill, in display order. One left with nothing to take off is
    declined rather than used up for nothing.
    """
    point_value = merchant.network.point_value_minor
    draft.points_value = draft.points_to_use * point_value
    draft.adjustments = []
    for adjustment in sorted_by_order(
        hooks_for(merchant).neighbourly_collect_purchase_adjustments(
            merchant=merchant, membership=membership, draft=draft, session=session
        )
    ):
        capped = min(adjustment.amount, max(draft.remaining, 0))
        if capped <= 0:  # a certificate or voucher the cashier named would be used up for nothing
            raise PurchaseDeclined(_(
                "%(label)s would take nothing off this bill: points already cover it. "
                "Use fewer points, or keep it for another visit.", label=adjustment.label,
            ))
        draft.adjustments.append(replace(adjustment, amount=capped))
    rate = earn_rate(merchant, membership)
    amount_paid = draft.remaining
    if amount_paid < 0:
        raise PurchaseDeclined(_("Points and discounts exceed the bill."))
    return SaleFigures(
        amount=draft.amount,
        points_used=draft.points_to_use,
        points_value=draft.points_value,
        adjustments=tuple(draft.adjustments),
        certificate_value=sum(a.amount for a in draft.adjustments if a.kind == "certificate"),
        discount=sum(a.amount for a in draft.adjustments if a.kind != "certificate"),
        amount_paid=amount_paid,
        points_earned=points_earned(amount_paid, rate.basis_points, point_value),
        rate=rate,
    )


def quote_sale(
    session: Session, merchant: Merchant, membership: Membership, draft: PurchaseDraft
) -> SaleFigures:
    """What recording ``draft`` now would record, without recording it: ``sale_figures`` runs
    in a savepoint that is always rolled back (anything an adjustment hook wrote is undone).

    Raises what the sale would raise for these figures (e.g. a refused certificate).
    """
    savepoint = session.begin_nested()
    try:
        return sale_figures(session, merchant, membership, draft)
    finally:
        savepoint.rollback()


def quote(merchant: Merchant, membership: Membership, amount: int) -> Quote:
    rate = earn_rate(merchant, membership)
    return Quote(
        max_points=max_points_for(merchant, membership, amount),
        earn_rate_bp=rate.basis_points,
        earn_rate_label=rate.label,
        balance=membership.balance,
    )


def _stored_error_class(kind: str) -> type[NeighbourlyError]:
    """A replayed decline is raised as the class first raised (a plugin's decline included), so
    views answer a retry alike, down to the API problem's ``type``."""
    pending: list[type[NeighbourlyError]] = [PurchaseDeclined, ValidationFailed]
    while pending:
        candidate = pending.pop()
        if candidate.__name__ == kind:
            return candidate
        pending.extend(candidate.__subclasses__())
    return PurchaseDeclined


class _Statements:
    """The sale's own statements, built once per dialect on the tables (Core, no ORM entities):
    a sale pays for executing them, not for composing them and looking up their compiled form."""

    # The purchase columns a sale writes (every one but the refund's two and the id).
    PURCHASE_COLUMNS = (
        "merchant_id", "membership_id", "cashier_id", "amount", "points_used", "points_value",
        "certificate_value_used", "discount", "amount_paid", "points_earned", "earn_rate_bp",
        "idempotency_key", "fingerprint", "note", "created_at",
    )

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        p, d, m = Purchase.__table__, PurchaseDecline.__table__, Membership.__table__
        key, merchant_id = bindparam("key"), bindparam("merchant_id", type_=Integer)
        # A retried key: its stored purchase or decline (read only when a sale cannot go in).
        self.replay = (
            select(literal("purchase").label("kind"), p.c.id, p.c.fingerprint)
            .where(p.c.merchant_id == merchant_id, p.c.idempotency_key == key)
            .union_all(
                select(literal("decline"), d.c.id, d.c.fingerprint).where(
                    d.c.merchant_id == merchant_id, d.c.idempotency_key == key
                )
            )
        )
        # One guarded statement moves the balance and the membership's counters together.
        points = bindparam("b_points", type_=BigInteger)
        now = bindparam("b_now", type_=m.c.last_purchase_at.type)
        latest = func.max if dialect == "sqlite" else func.greatest
        self.charge = (
            update(m)
            .where(m.c.id == bindparam("b_membership_id", type_=Integer), m.c.balance >= points)
            .values(
                balance=m.c.balance - points + bindparam("b_earned", type_=BigInteger),
                total_spent=m.c.total_spent + bindparam("b_amount", type_=BigInteger),
                visits=m.c.visits + 1,
                last_purchase_at=func.coalesce(latest(m.c.last_purchase_at, now), now),
            )
            .returning(m.c.balance, m.c.visits, m.c.total_spent, m.c.last_purchase_at)
        )
        # The purchase row goes in only if no decline of its key was committed meanwhile (read
        # after the card's lock; PostgreSQL reads committed rows per statement): the check that
        # was a statement of its own. A purchase already there fails the UNIQUE key instead.
        row = select(*[bindparam(name, type_=p.c[name].type) for name in self.PURCHASE_COLUMNS]).where(
            ~select(d.c.id).where(
                d.c.merchant_id == bindparam("merchant_id", type_=Integer),
                d.c.idempotency_key == bindparam("idempotency_key", type_=p.c.idempotency_key.type),
            ).exists()
        )
        self.insert_purchase = (
            insert(p).from_select(list(self.PURCHASE_COLUMNS), row).returning(p.c.id)
        )


_statements_for = per_dialect(_Statements)


def _stored_outcome(session: Session, merchant_id: int, draft: PurchaseDraft) -> PurchaseOutcome | None:
    """The stored outcome of this key, if any: the purchase, or its decline raised again.

    Raises ``IdempotencyConflict`` when the key was used for a different sale.
    """
    found = session.connection().execute(
        _statements_for(session).replay, {"merchant_id": merchant_id, "key": draft.idempotency_key}
    ).first()
    if found is None:
        return None
    kind, row_id, fingerprint = found
    if fingerprint != draft.fingerprint():
        raise IdempotencyConflict(
            _("This purchase was already submitted with different details; start a new one.")
        )
    if kind == "purchase":
        return PurchaseOutcome(purchase=session.get(Purchase, row_id), replayed=True)
    decline = session.get(PurchaseDecline, row_id)
    raise _stored_error_class(decline.error_kind)(decline.message)


def _store_decline(
    session: Session, merchant_id: int, draft: PurchaseDraft, error: NeighbourlyError
) -> None:
    """Remember a decline so the same key never succeeds later (e.g. once the balance has grown),
    unless the key already has an outcome: then that outcome is the answer (``_ReplayInstead``,
    or the stored decline raised again)."""
    session.rollback()  # the decline's own transaction begins at the card's lock, below
    try:
        with unit_of_work(session):
            # Take the card's row lock first: a twin recording this key holds it until its
            # commit, so the look-up below sees that purchase; a twin that locks after us sees
            # this decline (its purchase INSERT checks for one).
            session.execute(
                select(Membership.id).where(Membership.id == draft.membership_id).with_for_update()
            )
            replay = _stored_outcome(session, merchant_id, draft)
            if replay is not None:
                raise _ReplayInstead(replay)  # rolls the lock back
            session.add(
                PurchaseDecline(
                    merchant_id=merchant_id,
                    idempotency_key=draft.idempotency_key,
                    fingerprint=draft.fingerprint(),
                    error_kind=type(error).__name__,
                    message=error.message[:500],
                )
            )
    except IntegrityError:
        replay = _stored_outcome(session, merchant_id, draft)
        if replay is not None:
            raise _ReplayInstead(replay) from None


class _ReplayInstead(Exception):
    def __init__(self, outcome: PurchaseOutcome) -> None:
        self.outcome = outcome


def _validate(merchant: Merchant, membership: Membership, draft: PurchaseDraft) -> None:
    """Core rules, then plugins; raises ``PurchaseDeclined``/``ValidationFailed``."""
    if not draft.idempotency_key or len(draft.idempotency_key) > MAX_KEY_LENGTH:
        raise ValidationFailed(
            _("The form is missing its submission key; reload the page."), code="missing_key"
        )
    if membership.merchant_id != merchant.id or membership.left_at is not None:
        raise NotFound(_("This customer is not a member here."))
    if draft.amount <= 0:
        raise ValidationFailed(_("The amount must be greater than zero."))
    if draft.amount > MAX_AMOUNT:
        raise ValidationFailed(_("That amount is too large; check the number."))
    if draft.points_to_use < 0:
        raise ValidationFailed(_("Points to use cannot be negative."))
    if draft.lines and lines_total(draft.lines) != draft.amount:
        raise ValidationFailed(_("The amount must be the sum of the items picked."), code="amount_mismatch")
    if merchant.status != "active":
        raise PurchaseDeclined(_("This business is not active in the network, so it cannot record sales."))
    limit = points_limit(draft.amount, merchant.max_points_share_pct, merchant.network.point_value_minor)
    if draft.points_to_use > limit:
        raise PurchaseDeclined(_(
            "At most %(limit)s points can be used on this bill (%(share)s%% of the amount).",
            limit=limit, share=merchant.max_points_share_pct,
        ))
    if draft.points_to_use > membership.balance:
        raise InsufficientPoints(_(
            "The customer has %(balance)s points; %(requested)s were requested.",
            balance=membership.balance, requested=draft.points_to_use,
        ))
    for reason in hooks_for(merchant).neighbourly_validate_purchase(
        merchant=merchant, membership=membership, draft=draft
    ):
        if reason:
            raise PurchaseDeclined(str(reason))


def record_purchase(
    session: Session, merchant: Merchant, membership: Membership, draft: PurchaseDraft
) -> PurchaseOutcome:
    """Record a sale exactly once per idempotency key, or raise the (stored) decline.

    Validate (no writes) -> record (one transaction: plugins' adjustments, guarded balance
    update, purchase row, ledger rows, ``neighbourly_purchase_recorded``, weekly figures, the
    outbox) -> commit -> after-commit work from the outbox.

    A key already used is found where the sale cannot go in: the purchase row's UNIQUE key (a
    success), its INSERT's check for a stored decline, or a refusal (stored only if the key has
    no outcome yet). A new sale, nearly every one, pays no look-up for it.
    """
    merchant_id = merchant.id
    try:
        try:
            _validate(merchant, membership, draft)
            purchase = _record(session, merchant, membership, draft)
        except NotFound:
            replay = _stored_outcome(session, merchant_id, draft)  # e.g. the customer left since
            if replay is None:
                raise
            return replay
        except (PurchaseDeclined, ValidationFailed) as error:
            if error.details.get("code") == "missing_key":  # the message is translated
                raise
            _store_decline(session, merchant_id, draft, error)
            raise
    except _ReplayInstead as replayed:
        return replayed.outcome
    return PurchaseOutcome(purchase=purchase)


def _record(
    session: Session, merchant: Merchant, membership: Membership, draft: PurchaseDraft
) -> Purchase:
    """The sale's transaction, from the figures to the commit; rolled back on any error."""
    now = draft.created_at or utcnow()
    statements = _statements_for(session)
    merchant_id, membership_id = merchant.id, membership.id
    purchase: Purchase | None = None
    try:
        with unit_of_work(session) as unit:  # commits at the end, rolls back on any error
            figures = sale_figures(session, merchant, membership, draft)
            card = _charge(session, statements, membership_id, draft, figures, now)
            purchase = _insert_purchase(session, statements, merchant_id, membership_id, draft, figures, now)
            if purchase is None:
                raise _DeclinedMeanwhile
            if draft.lines:  # a sale without lines sends no statement for them
                _insert_lines(session, purchase, draft.lines)
            hooks = hooks_for(merchant)
            zone = network_zone(merchant.network)
            remember_merchant_zone(session, merchant_id, zone)  # plugins' postings: no zone look-up
            _write_ledger(session, merchant, purchase, draft, figures, now)  # before the hooks, as they are promised
            # The card's month for lifetime value and cohorts: the one statement the running totals
            # add to a sale (a per-card row cannot join the merchant-week upsert below).
            bump_customer_month(session, merchant_id, membership_id, now, membership.joined_at, zone, 1, draft.amount)
            # The follow-up work commits with the sale (the outbox), never after it: what the
            # plugins' hooks queue, their after-commit rows and the event's (webhooks) go in with
            # one INSERT at the end.
            with outbox.batched(session):
                # The ledger rows plugins post go in with one INSERT (one statement fewer for each
                # plugin after the first), and the merchant-week they all bump with one upsert.
                with batched_postings(session):
                    bump_weekly_stats(
                        session, merchant_id, now, zone=zone,
                        purchases=1, revenue=draft.amount, amount_paid=figures.amount_paid,
                        points_earned=figures.points_earned, points_redeemed=draft.points_to_use,
                        repeat_customers=1 if card.visits == 2 else 0,
                    )
                    hooks.neighbourly_purchase_recorded(
                        merchant=merchant, purchase=purchase, membership=membership, session=session,
                        adjustments=figures.adjustments,
                    )
                tasks.queue_committed(session, merchant, "purchase", purchase.id)
                outbox.record_event(session, merchant, "purchase.recorded", purchase_event_data(purchase))
            # The receipt and the after-commit dispatch read these without loading them again:
            # this transaction wrote every column of the purchase, and a sale never writes the
            # merchant, its network or users. Everything else is expired by the commit as usual.
            unit.keep_loaded(purchase, merchant, merchant.__dict__.get("network"), types=(User,))
            if membership_id not in unit.balances_moved:
                # The card's one change was the charge, whose new figures it returned: the receipt
                # shows them without loading the card again (one statement fewer per checkout).
                for name in ("balance", "visits", "total_spent", "last_purchase_at"):
                    set_committed_value(membership, name, getattr(card, name))
                unit.keep_loaded(membership)
    except _DeclinedMeanwhile:
        # A twin stored a decline of this key meanwhile: answer alike (raises it).
        _stored_outcome(session, merchant_id, draft)
        raise PurchaseDeclined(_("The purchase could not be recorded; nothing was charged.")) from None
    except IntegrityError as error:
        _forget(session, purchase)
        replay = _stored_outcome(session, merchant_id, draft)  # the key's purchase went in first
        if replay is not None:
            raise _ReplayInstead(replay) from None
        log.exception("purchase insert failed")
        raise PurchaseDeclined(_("The purchase could not be recorded; nothing was charged.")) from error
    except NeighbourlyError:
        _forget(session, purchase)
        raise
    except Exception as error:
        _forget(session, purchase)
        if is_database_unavailable(error):  # answered with a 503: nothing was recorded
            raise
        log.exception("a plugin failed while recording a purchase; rolled back")
        raise _Unrecorded(
            _("The purchase could not be recorded because of an internal error; nothing was charged.")
        ) from error
    return purchase


class _DeclinedMeanwhile(Exception):
    """The purchase INSERT found a decline of its key committed meanwhile (nothing inserted)."""


def _charge(
    session: Session, statements: _Statements, membership_id: int, draft: PurchaseDraft,
    figures: SaleFigures, now: datetime,
) -> Row:
    """The card's guarded UPDATE: points spent and earned, spend and visits; returns the card's
    new balance, visits, spend and last visit.

    Run through the session (not its connection) so ``do_orm_execute`` listeners see it.
    """
    session.flush()  # pending changes of the adjustment hooks first, as an ORM UPDATE would
    row = session.execute(
        statements.charge,
        {
            "b_membership_id": membership_id,
            "b_points": draft.points_to_use,
            "b_earned": figures.points_earned,
            "b_amount": draft.amount,
            "b_now": now,
        },
    ).first()
    if row is None:
        raise InsufficientPoints(_("The customer no longer has enough points for that."))
    return row


def _write_ledger(
    session: Session, merchant: Merchant, purchase: Purchase, draft: PurchaseDraft,
    figures: SaleFigures, now: datetime,
) -> None:
    """The sale's own ledger rows (points spent, cashback earned) in one INSERT."""
    postings = []
    if draft.points_to_use:
        postings.append(
            Posting(purchase.membership_id, purchase.merchant_id, "redeem", -draft.points_to_use,
                    ledger_reasons.redeemed(purchase.id), purchase_id=purchase.id)
        )
    if figures.points_earned:
        # The expiry comes from the merchant already loaded: no statement of its own.
        expires_at, idle_months = credit_expiry(merchant, now)
        postings.append(
            Posting(purchase.membership_id, purchase.merchant_id, "earn", figures.points_earned,
                    ledger_reasons.cashback(purchase.id, figures.rate.basis_points),
                    purchase_id=purchase.id, expires_at=expires_at, idle_months=idle_months,
                    apply_policy=False)
        )
    if postings:
        insert_entries(session, postings, now)


def purchase_event_data(purchase: Purchase) -> dict[str, Any]:
    """A purchase as plain data for events (webhooks): amounts in minor units, UTC ISO times."""
    return {
        "id": purchase.id,
        "membership_id": purchase.membership_id,
        "amount": purchase.amount,
        "points_used": purchase.points_used,
        "certificate_value_used": purchase.certificate_value_used,
        "discount": purchase.discount,
        "amount_paid": purchase.amount_paid,
        "points_earned": purchase.points_earned,
        "created_at": purchase.created_at.isoformat(),
        "refunded_at": purchase.refunded_at.isoformat() if purchase.refunded_at else None,
    }


def _insert_purchase(
    session: Session, statements: _Statements, merchant_id: int, membership_id: int,
    draft: PurchaseDraft, figures: SaleFigures, now: datetime,
) -> Purchase | None:
    """Insert the purchase row with one prepared statement and hand it to the session as a
    persistent, fully loaded instance (what ``add`` + ``flush`` gives, without the unit of work).
    ``None`` when a decline of the key was committed meanwhile (nothing inserted).

    Every column is given, so nothing is left to a default or to be loaded again; plugins get
    this instance in the record phase and may change it through the ORM like any other.
    """
    values = {
        "merchant_id": merchant_id,
        "membership_id": membership_id,
        "cashier_id": draft.cashier_id,
        "amount": draft.amount,
        "points_used": draft.points_to_use,
        "points_value": draft.points_value,
        "certificate_value_used": figures.certificate_value,
        "discount": figures.discount,
        "amount_paid": figures.amount_paid,
        "points_earned": figures.points_earned,
        "earn_rate_bp": figures.rate.basis_points,
        "idempotency_key": draft.idempotency_key,
        "fingerprint": draft.fingerprint(),
        "note": draft.note[:200],
        "created_at": now,
    }
    purchase_id = session.execute(statements.insert_purchase, values).scalar()
    if purchase_id is None:
        return None
    purchase = Purchase(id=purchase_id, refunded_at=None, refunded_by_id=None, **values)
    make_transient_to_detached(purchase)
    if not draft.lines:  # a sale typed in has no lines: its receipt does not look them up
        set_committed_value(purchase, "items", [])
    session.add(purchase)
    return purchase


def _insert_lines(session: Session, purchase: Purchase, lines: tuple[SaleLine, ...]) -> None:
    """The bill's price-list lines in one multi-row INSERT, names and prices as sold."""
    session.execute(
        insert(PurchaseItem.__table__).values(
            [
                {
                    "purchase_id": purchase.id,
                    "merchant_id": purchase.merchant_id,
                    "price_item_id": line.price_item_id,
                    "name": line.name,
                    "unit_price": line.unit_price,
                    "quantity": line.quantity,
                }
                for line in lines
            ]
        )
    )


def _forget(session: Session, purchase: Purchase | None) -> None:
    """After the sale's rollback: the purchase instance was handed to the session as persistent,
    which a rollback leaves in the session (expired) instead of expunging it as it does with
    objects added in the transaction; it goes with its row."""
    if purchase is not None and purchase in session:
        session.expunge(purchase)


class _Unrecorded(NeighbourlyError):
    """An unexpected failure inside the purchase transaction; not stored as a decline."""

    status_code = 500


def receipt_lines(merchant: Merchant, purchase: Purchase):
    """Receipt lines from the core and the merchant's plugins, in display order."""
    return sorted_by_order(
        hooks_for(merchant).neighbourly_collect_receipt_lines(merchant=merchant, purchase=purchase)
    )


def refund_purchase(
    session: Session, merchant: Merchant, purchase_id: int, refunded_by_id: int | None
) -> Purchase:
    """Reverse exactly what a purchase caused; a second refund is refused.

    Every ledger entry naming the purchase (core and plugins, any membership) is reversed: one
    guarded balance update for all the memberships (locked in ascending id order).
    """
    now = utcnow()
    with unit_of_work(session):
        stamped = session.execute(
            update(Purchase)
            .where(
                Purchase.id == purchase_id,
                Purchase.merchant_id == merchant.id,
                Purchase.refunded_at.is_(None),
            )
            .values(refunded_at=now, refunded_by_id=refunded_by_id)
            .execution_options(synchronize_session=False)
        ).rowcount
        purchase = session.scalar(
            select(Purchase).where(Purchase.id == purchase_id, Purchase.merchant_id == merchant.id)
        )
        if purchase is None:
            raise NotFound(_("No such purchase here."))
        if not stamped:
            raise AlreadyRefunded(_("This purchase has already been refunded."))
        session.refresh(purchase)
        entries = session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.purchase_id == purchase.id, LedgerEntry.reverses_id.is_(None))
            .order_by(LedgerEntry.membership_id, LedgerEntry.id)
        ).all()
        already_reversed = set(
            session.scalars(
                select(LedgerEntry.reverses_id).where(
                    LedgerEntry.purchase_id == purchase.id, LedgerEntry.reverses_id.is_not(None)
                )
            )
        )
        reversals = [
            Posting(e.membership_id, e.merchant_id, "refund", -e.amount,
                    ledger_reasons.refund(purchase.id, e.reason_kind, e.reason_params),
                    source=e.source, purchase_id=purchase.id, reverses_id=e.id)
            for e in entries
            if e.id not in already_reversed
        ]
        totals: dict[int, int] = {}
        for posting in reversals:
            totals[posting.membership_id] = totals.get(posting.membership_id, 0) + posting.amount
        try:
            change_balances(session, totals)  # one guarded statement, all cards or none
        except InsufficientPoints:
            raise RefundRefused(_(
                "The points this purchase earned have already been spent, so it cannot be "
                "refunded automatically; adjust the balance first."
            )) from None
        if reversals:
            insert_entries(session, reversals, now)
        session.execute(
            update(Membership)
            .where(Membership.id == purchase.membership_id)
            .values(
                total_spent=Membership.total_spent - purchase.amount,
                visits=Membership.visits - 1,
            )
            .execution_options(synchronize_session=False)
        )
        bump_customer_month(
            session, merchant.id, purchase.membership_id, purchase.created_at, purchase.membership.joined_at,
            network_zone(merchant.network), -1, -purchase.amount,
        )
        core_earned = sum(p.amount for p in reversals if p.source == "core" and p.amount < 0)
        other = sum(p.amount for p in reversals if p.source != "core")
        bump_weekly_stats(
            session,
            merchant.id,
            purchase.created_at,
            zone=network_zone(merchant.network),
            refunds=1,
            revenue=-purchase.amount,
            amount_paid=-purchase.amount_paid,
            points_earned=core_earned,
            points_redeemed=-purchase.points_used,
            points_other=other,
        )
        hooks_for(merchant).neighbourly_purchase_refunded(
            merchant=merchant, purchase=purchase, session=session
        )
        outbox.record_event(session, merchant, "purchase.refunded", purchase_event_data(purchase))
    return purchase

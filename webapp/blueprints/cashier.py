"""The till: find a customer, record a purchase with points, show the receipt; refunds by the owner."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from webapp.blueprints.errors import when_database_unavailable
from webapp.errors import (
    AlreadyRefunded,
    IdempotencyConflict,
    NeighbourlyError,
    PurchaseDeclined,
    RefundRefused,
    ValidationFailed,
)
from webapp.extensions import db
from webapp.formatting import parse_money
from webapp.formatting import points as format_points
from webapp.models import Membership, Merchant, Purchase
from webapp.plugins import hooks_for, sorted_by_order
from webapp.services import memberships as membership_service
from webapp.services import price_items as price_item_service
from webapp.services import purchases as purchase_service
from webapp.services.purchases import MAX_AMOUNT, PurchaseDraft, SaleLine
from webapp.timezones import day_start, network_zone
from webapp.timezones import today as local_today
from webapp.web import is_fragment_request, render, see_other, staff_required

bp = Blueprint("cashier", __name__, url_prefix="/business")

RECENT_LIMIT = 10
MAX_OPTIONS = 20  # plugin choices per sale; more is a forged form, not a cashier
MAX_OPTION_LENGTH = 200
MAX_QUERY_LENGTH = 120
ITEM_FIELD = "qty."  # "qty.<price item id>": how many of that item are on the bill
PURCHASE_RECORDED_EVENT = "purchase-recorded"


# --------------------------------------------------------------------------- small helpers


def _new_key() -> str:
    """A fresh idempotency key; one per rendered purchase form, so a resubmit replays."""
    return uuid.uuid4().hex


def _member_here(merchant: Merchant, membership_id: Any) -> Membership:
    """The active membership ``membership_id`` of this merchant, or 404 (other tenants' too)."""
    try:
        wanted = int(membership_id)
    except (TypeError, ValueError):
        abort(404)
    membership = db.session.scalar(
        select(Membership)
        .options(joinedload(Membership.user))
        .where(
            Membership.id == wanted,
            Membership.merchant_id == merchant.id,
            Membership.left_at.is_(None),
        )
    )
    if membership is None:
        abort(404)
    return membership


def _start_of_today(merchant: Merchant) -> datetime:
    """Local midnight where the shop is, as UTC: "today" means the day the cashier lives in."""
    zone = network_zone(merchant.network)
    return day_start(local_today(zone), zone)


def _recent_purchases(merchant: Merchant) -> list[Purchase]:
    return list(
        db.session.scalars(
            select(Purchase)
            .options(joinedload(Purchase.membership).joinedload(Membership.user))
            .where(Purchase.merchant_id == merchant.id, Purchase.created_at >= _start_of_today(merchant))
            .order_by(Purchase.created_at.desc(), Purchase.id.desc())
            .limit(RECENT_LIMIT)
        )
    )


def _parse_amount(merchant: Merchant, text: str) -> tuple[int | None, str | None]:
    """(minor units, None) or (None, message for the cashier)."""
    if not (text or "").strip():
        return None, _("Enter the amount of the bill.")
    try:
        amount = parse_money(text, merchant.network.currency)
    except ValueError:
        return None, _("Enter the amount as a number, for example 4500 or 4500.50.")
    if amount <= 0:
        return None, _("The amount must be greater than zero.")
    if amount > MAX_AMOUNT:
        return None, _("That amount is too large; check the number.")
    return amount, None


def _parse_points(text: str) -> tuple[int | None, str | None]:
    """Whole points; blank means none."""
    cleaned = (text or "").strip().replace(" ", "").replace("\u00a0", "")
    if not cleaned:
        return 0, None
    if not cleaned.isdigit():
        return None, _("Enter points as a whole number, or leave the field empty.")
    if len(cleaned) > 15:
        return None, _("That is more points than the customer has.")
    return int(cleaned), None


def _picks(form) -> tuple[list[tuple[int, int]], str | None]:
    """The price-list items picked (``qty.<id>`` fields with a quantity); blanks and zeros are
    not picked. (picks, None) or ([], message)."""
    picks: list[tuple[int, int]] = []
    for key, value in form.items():
        if not key.startswith(ITEM_FIELD):
            continue
        cleaned = (value or "").strip()
        if not cleaned or cleaned == "0":
            continue
        item_id = key[len(ITEM_FIELD):]
        if not item_id.isdigit() or len(item_id) > 12:
            return [], _("An item picked is not in this price list (it may have been removed); pick again.")
        if not cleaned.isdigit() or len(cleaned) > 6 or not 1 <= int(cleaned) <= purchase_service.MAX_QUANTITY:
            return [], _("A quantity is a whole number from 1 to %(max)s.", max=purchase_service.MAX_QUANTITY)
        picks.append((int(item_id), int(cleaned)))
        if len(picks) > purchase_service.MAX_LINES:
            return [], _("At most %(count)s price-list items on one bill.", count=purchase_service.MAX_LINES)
    return picks, None


def _priced(merchant: Merchant, form) -> tuple[tuple[SaleLine, ...], str | None]:
    """The picked items priced from this merchant's list, or a message for the cashier."""
    picks, error = _picks(form)
    if error:
        return (), error
    try:
        return purchase_service.priced_lines(db.session, merchant, picks), None
    except ValidationFailed as failure:
        return (), failure.message


def _plugin_options(form) -> dict[str, str]:
    """Fields named ``opt_<name>`` carry a plugin's choice at the till (e.g. a certificate code)."""
    options: dict[str, str] = {}
    for key, value in form.items():
        if not key.startswith("opt_") or len(options) >= MAX_OPTIONS:
            continue
        name = key[4:][:40]
        value = (value or "").strip()[:MAX_OPTION_LENGTH]
        if name and value:  # blanks are left out so retries keep the same fingerprint
            options[name] = value
    return options


def _quote_context(
    merchant: Merchant, membership: Membership, amount: int | None, points_to_use: int,
    options: dict[str, str] | None = None, lines: tuple[SaleLine, ...] = (),
):
    """The live panel: the sale's own figures for what the cashier has typed so far (the
    picked items' sum is the amount when items are picked)."""
    if lines:
        amount = purchase_service.lines_total(lines)
    quote = purchase_service.quote(merchant, membership, amount or 0)
    over_max = bool(amount) and points_to_use > quote.max_points
    figures, refused = None, None
    if amount:
        draft = PurchaseDraft(
            membership_id=membership.id, amount=amount,
            # Over the limit the sale is declined: show what the allowed maximum would do.
            points_to_use=min(points_to_use, quote.max_points),
            idempotency_key=f"quote-{_new_key()}", cashier_id=current_user.id, options=options or {},
            lines=lines,
        )
        try:
            figures = purchase_service.quote_sale(db.session, merchant, membership, draft)
        except NeighbourlyError as error:  # e.g. a certificate that cannot be used here
            refused = error.message
    return {
        "quote": quote,
        "quote_amount": amount,
        "quote_lines": lines,
        "quote_points": points_to_use,
        "figures": figures,
        "quote_refused": refused,
        "expected_points": figures.points_earned if figures else 0,
        "points_over_max": over_max,
    }


def _checkout_lines(merchant: Merchant, membership: Membership) -> list:
    return sorted_by_order(
        hooks_for(merchant).neighbourly_collect_checkout_lines(merchant=merchant, membership=membership)
    )


def _customer_context(
    merchant: Merchant,
    membership: Membership,
    *,
    amount_text: str = "",
    points_text: str = "",
    key: str | None = None,
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Everything the purchase form needs for an identified customer."""
    amount, _amount_error = _parse_amount(merchant, amount_text) if amount_text else (None, None)
    points_to_use, _points_error = _parse_points(points_text)
    posted = request.method == "POST"
    options = _plugin_options(request.form) if posted else {}
    lines, _items_error = _priced(merchant, request.form) if posted else ((), None)
    picked, _pick_error = _picks(request.form) if posted else ([], None)
    return {
        "state": "customer",
        "membership": membership,
        "price_items": price_item_service.items_of(db.session, merchant),
        "picked": dict(picked),
        "item_field": ITEM_FIELD,
        "checkout_lines": _checkout_lines(merchant, membership),
        "amount_text": amount_text,
        "points_text": points_text,
        "idempotency_key": key or _new_key(),
        "errors": errors or {},
        **_quote_context(merchant, membership, amount, points_to_use or 0, options, lines),
    }


def _till(merchant: Merchant, status: int = 200, **context: Any):
    """The till page (or its checkout region for htmx)."""
    context.setdefault("state", "search")
    context.setdefault("errors", {})
    if not is_fragment_request():
        context["recent"] = _recent_purchases(merchant)
    return render(
        "cashier/till.html", block="checkout", status=status, merchant=merchant,
        staff_role=g.staff_role, **context,
    )


def _inactive(merchant: Merchant):
    return _till(merchant, 422, state="inactive")


# --------------------------------------------------------------------------- the till


@bp.route("/<merchant_slug>/till")
@staff_required()
def till(merchant: Merchant):
    """Search form, or the purchase form for ``?member=<id>`` (after a search, or "another sale")."""
    if not merchant.is_active:
        return _till(merchant, state="inactive")
    if request.args.get("member"):
        membership = _member_here(merchant, request.args.get("member"))
        return _till(merchant, **_customer_context(merchant, membership))
    return _till(merchant)


@bp.route("/<merchant_slug>/till/find", methods=["POST"])
@staff_required()
def find(merchant: Merchant):
    """Identify the customer by card code, scanned QR text or phone number."""
    if not merchant.is_active:
        return _inactive(merchant)
    query = (request.form.get("q") or "").strip()[:MAX_QUERY_LENGTH]
    if not query:
        return _till(merchant, 422, query=query, errors={"q": _("Scan the card or type its code or phone number.")})
    membership = membership_service.find_customer_at_till(db.session, merchant, query)
    if membership is None:
        return _till(merchant, 422, query=query, not_found=True)
    if not is_fragment_request():
        # Without JavaScript: post/redirect/get, so a reload does not resubmit the search.
        return redirect(url_for("cashier.till", merchant_slug=merchant.slug, member=membership.id), code=303)
    return _till(merchant, **_customer_context(merchant, membership))


@bp.route("/<merchant_slug>/till/quote")
@staff_required()
def quote(merchant: Merchant):
    """The live panel: points allowed, what to collect and the points to be earned, refreshed as
    the cashier types (amount, points, a certificate), from the sale's own computation."""
    membership = _member_here(merchant, request.args.get("membership_id"))
    amount_text = request.args.get("amount", "")
    amount, error = _parse_amount(merchant, amount_text) if amount_text.strip() else (None, None)
    points_to_use, _points_error = _parse_points(request.args.get("points", ""))
    lines, items_error = _priced(merchant, request.args)
    if lines:  # the items make the bill: whatever was typed in the amount does not matter
        error = None
    context = _quote_context(
        merchant, membership, amount, points_to_use or 0, _plugin_options(request.args), lines
    )
    error = items_error or error
    body = render_template(
        "cashier/_quote.html", merchant=merchant, membership=membership, amount_error=error, **context
    )
    return body, 200, {"Vary": "HX-Request", "Cache-Control": "no-store"}


@bp.route("/<merchant_slug>/till/purchase", methods=["POST"])
@when_database_unavailable(lambda: _(
    "The sale was not recorded: the database is not available. Try again; it will not be "
    "recorded twice."
))
@staff_required()
def purchase(merchant: Merchant):
    """Record the sale once per idempotency key and answer with the receipt."""
    form = request.form
    membership = _member_here(merchant, form.get("membership_id"))
    if not merchant.is_active:
        return _inactive(merchant)
    amount_text = form.get("amount", "")[:40]
    points_text = form.get("points", "")[:40]
    key = (form.get("idempotency_key") or "").strip()
    options = _plugin_options(form)
    errors: dict[str, str] = {}
    lines, items_error = _priced(merchant, form)
    if lines:  # the picked items fill the bill
        amount, amount_error = purchase_service.lines_total(lines), None
        if amount <= 0:
            amount_error = _("The amount must be greater than zero.")
        elif amount > MAX_AMOUNT:
            amount_error = _("That amount is too large; check the number.")
    else:
        amount, amount_error = _parse_amount(merchant, amount_text)
    points_to_use, points_error = _parse_points(points_text)
    if items_error:
        errors["line_items"] = items_error
    elif amount_error:
        errors["amount"] = amount_error
    if points_error:
        errors["points"] = points_error
    if not key or len(key) > purchase_service.MAX_KEY_LENGTH:
        errors["form"] = _("The form is missing its submission key; reload the page.")
        key = None
    if errors:
        # Nothing reached the service, so the same key may be submitted again once corrected.
        return _till(merchant, 422, **_customer_context(
            merchant, membership, amount_text=amount_text, points_text=points_text,
            key=key, errors=errors,
        ))
    draft = PurchaseDraft(
        membership_id=membership.id,
        amount=amount,
        points_to_use=points_to_use,
        idempotency_key=key,
        cashier_id=current_user.id,
        options=options,
        lines=lines,
    )
    try:
        outcome = purchase_service.record_purchase(db.session, merchant, membership, draft)
    except IdempotencyConflict as error:
        return _till(merchant, 409, **_customer_context(
            merchant, membership, amount_text=amount_text, points_text=points_text,
            errors={"form": error.message},
        ))
    except (PurchaseDeclined, ValidationFailed) as error:
        # The decline is stored under this key (a retry replays it), so the corrected form
        # needs a fresh key.
        db.session.refresh(membership)
        context = _customer_context(
            merchant, membership, amount_text=amount_text, points_text=points_text,
            errors={"form": error.message},
        )
        if context["points_over_max"]:
            # Said once, at the field, instead of again above the form.
            context["errors"] = {"points": _(
                "At most %(points)s points can be used on this bill.", points=format_points(context["quote"].max_points)
            )}
        return _till(merchant, 422, **context)
    except NeighbourlyError as error:
        # A plugin failed inside the transaction: it was rolled back, so say so at the form
        # (with a status htmx swaps) instead of leaving the cashier with no answer.
        db.session.refresh(membership)
        status = error.status_code if error.status_code in (409, 422) else 422
        return _till(merchant, status, **_customer_context(
            merchant, membership, amount_text=amount_text, points_text=points_text,
            errors={"form": error.message},
        ))
    response = _till(
        merchant,
        state="receipt",
        purchase=outcome.purchase,
        membership=outcome.purchase.membership,
        replayed=outcome.replayed,
        receipt_lines=purchase_service.receipt_lines(merchant, outcome.purchase),
    )
    response.headers["HX-Trigger"] = PURCHASE_RECORDED_EVENT
    return response


@bp.route("/<merchant_slug>/till/recent")
@staff_required()
def recent(merchant: Merchant):
    """Today's last purchases; htmx reloads it whenever a sale is recorded."""
    return render(
        "cashier/till.html", block="recent", merchant=merchant, staff_role=g.staff_role,
        state="search", errors={}, recent=_recent_purchases(merchant),
    )


# --------------------------------------------------------------------------- purchases and refunds


def _purchase_here(merchant: Merchant, purchase_id: int) -> Purchase:
    purchase = db.session.scalar(
        select(Purchase)
        .options(joinedload(Purchase.membership).joinedload(Membership.user), joinedload(Purchase.cashier))
        .where(Purchase.id == purchase_id, Purchase.merchant_id == merchant.id)
    )
    if purchase is None:
        abort(404)
    return purchase


def _purchase_page(merchant: Merchant, purchase: Purchase, status: int = 200, error: str | None = None,
                   adjust_url: str | None = None):
    return render(
        "cashier/purchase.html",
        block="panel",
        status=status,
        merchant=merchant,
        staff_role=g.staff_role,
        purchase=purchase,
        receipt_lines=purchase_service.receipt_lines(merchant, purchase),
        error=error,
        adjust_url=adjust_url,
    )


@bp.route("/<merchant_slug>/purchases/<int:purchase_id>")
@staff_required()
def purchase_detail(merchant: Merchant, purchase_id: int):
    return _purchase_page(merchant, _purchase_here(merchant, purchase_id))


@bp.route("/<merchant_slug>/purchases/<int:purchase_id>/refund", methods=["POST"])
@staff_required("owner")
def refund(merchant: Merchant, purchase_id: int):
    """Reverse everything the purchase caused; a second refund is refused with a message."""
    _purchase_here(merchant, purchase_id)
    try:
        purchase_service.refund_purchase(db.session, merchant, purchase_id, current_user.id)
    except (AlreadyRefunded, RefundRefused) as error:
        purchase = _purchase_here(merchant, purchase_id)
        adjust_url = None
        if isinstance(error, RefundRefused):  # the way out: adjust the balance on the portrait
            adjust_url = url_for("business.customer", merchant_slug=merchant.slug,
                                 membership_id=purchase.membership_id, _anchor="adjust")
        return _purchase_page(merchant, purchase, 409, error.message, adjust_url=adjust_url)
    flash(_("Purchase No. %(number)s was refunded; the customer's points were restored.", number=purchase_id), "success")
    return see_other("cashier.purchase_detail", merchant_slug=merchant.slug, purchase_id=purchase_id)

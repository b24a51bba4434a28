"""Letters pages: templates with live preview, partner codes, printing, addresses, unsubscribe."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from flask import abort, current_app, flash, make_response, request
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from plugins.letters import compose, delivery, services
from plugins.letters.models import KINDS
from webapp.plugin_api import (
    MARKETING,
    Merchant,
    User,
    ValidationFailed,
    csrf,
    db,
    has_consent,
    is_enabled,
    merchant_plugin_blueprint,
    render,
    see_other,
    staff_required,
    withdraw_consent,
)

bp = merchant_plugin_blueprint("letters", __name__, template_folder="templates")
PREFIX = "/business/<merchant_slug>/letters"
ADDRESS_FIELDS = ("recipient", "street", "city", "postcode", "country")
# A 1x1 transparent GIF for the optional open-tracking pixel.
PIXEL = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")


def kind_titles() -> dict[str, str]:
    return {
        "thanks": _("Thank-you after a purchase"),
        "reassurance": _("Reassurance the next day"),
        "winback": _("We miss you"),
    }


def _kind(kind: str) -> str:
    if kind not in KINDS:
        abort(404)
    return kind


@bp.route(PREFIX + "/")
@staff_required("owner")
def index(merchant):
    return render(
        "letters/index.html", merchant=merchant, figures=services.figures(db.session, merchant),
        templates=[services.template_for(db.session, merchant, kind) for kind in KINDS],
        titles=kind_titles(), pools=services.pool_summaries(db.session, merchant),
        code_form={}, errors={},
    )


@bp.route(PREFIX + "/panel")
@staff_required("owner")
def panel(merchant):
    """The dashboard panel, loaded after the dashboard page (its figures scan the cards)."""
    return render("letters/_panel.html", merchant=merchant, figures=services.figures(db.session, merchant))


# --------------------------------------------------------------------------- templates


def _template_page(merchant, kind, form, errors, status=200, block=None):
    rendered = delivery.preview(merchant, kind, form["subject"], form["body"], form.get("bonus_pool", ""))
    return render(
        "letters/template.html", block=block, status=status, merchant=merchant, kind=kind,
        title=kind_titles()[kind], form=form, errors=errors, rendered=rendered,
        placeholders=compose.PLACEHOLDERS,
    )


@bp.route(PREFIX + "/templates/<kind>", methods=["GET", "POST"])
@staff_required("owner")
def edit_template(merchant, kind: str):
    kind = _kind(kind)
    if request.method == "GET":
        current = services.template_for(db.session, merchant, kind)
        form = {"subject": current.subject, "body": current.body, "bonus_pool": current.bonus_pool}
        return _template_page(merchant, kind, form, {})
    form = {key: request.form.get(key, "") for key in ("subject", "body", "bonus_pool")}
    try:
        services.save_template(db.session, merchant, kind, **form)
    except ValidationFailed as error:
        return _template_page(merchant, kind, form, error.details.get("errors", {}), status=422, block="editor")
    flash(_("The letter is saved."))
    return see_other("letters.index", merchant_slug=merchant.slug)


@bp.route(PREFIX + "/templates/<kind>/preview", methods=["POST"])
@staff_required("owner")
def preview(merchant, kind: str):
    """The live preview (htmx posts the form on every change): the preview fragment only."""
    kind = _kind(kind)
    form = {key: request.form.get(key, "")[:compose_limit(key)] for key in ("subject", "body", "bonus_pool")}
    return _template_page(merchant, kind, form, {}, block="preview")


def compose_limit(key: str) -> int:
    return 20_000 if key == "body" else 1_000


# --------------------------------------------------------------------------- partner codes


@bp.route(PREFIX + "/codes", methods=["POST"])
@staff_required("owner")
def add_codes(merchant):
    form = {key: request.form.get(key, "") for key in ("pool", "partner", "codes")}
    try:
        added = services.add_codes(db.session, merchant, form["pool"], form["partner"], form["codes"])
    except ValidationFailed as error:
        return render(
            "letters/index.html", block="code_form", status=422, merchant=merchant,
            figures=services.figures(db.session, merchant),
            templates=[services.template_for(db.session, merchant, kind) for kind in KINDS],
            titles=kind_titles(), pools=services.pool_summaries(db.session, merchant),
            code_form=form, errors=error.details.get("errors", {}),
        )
    flash(_("%(count)s codes added to the pool.", count=added))
    return see_other("letters.index", merchant_slug=merchant.slug)


# --------------------------------------------------------------------------- printing


def _day(text: str | None, fallback: date) -> date:
    try:
        return date.fromisoformat(text) if text else fallback
    except ValueError:
        return fallback


def _range() -> tuple[date, date, datetime, datetime]:
    today = datetime.now(UTC).date()
    start = _day(request.values.get("start"), today - timedelta(days=7))
    end = _day(request.values.get("end"), today)
    if end < start:
        start, end = end, start
    return (
        start, end, datetime.combine(start, time.min, UTC), datetime.combine(end + timedelta(days=1), time.min, UTC)
    )


@bp.route(PREFIX + "/print")
@staff_required("owner")
def print_page(merchant):
    start, end, since, until = _range()
    letters = services.pending_postal(db.session, merchant, since, until)
    return render("letters/print_page.html", merchant=merchant, letters=letters, start=start, end=end)


@bp.route(PREFIX + "/print.pdf")
@staff_required("owner")
def print_pdf(merchant):
    start, end, since, until = _range()
    letters = services.pending_postal(db.session, merchant, since, until)
    if not letters:
        abort(404)
    data = delivery.postal_pdf(merchant, letters)
    return _pdf_response(data, f"letters-{start.isoformat()}-{end.isoformat()}.pdf")


@bp.route(PREFIX + "/print/mark", methods=["POST"])
@staff_required("owner")
def mark_printed(merchant):
    ids = [int(value) for value in request.form.getlist("letter_id") if value.isdigit()]
    done = services.mark_printed(db.session, merchant, ids)
    flash(_("%(count)s letters marked as printed.", count=done))
    return see_other(
        "letters.print_page", merchant_slug=merchant.slug,
        start=request.form.get("start", ""), end=request.form.get("end", ""),
    )


def _pdf_response(data: bytes, filename: str):
    response = make_response(data)
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --------------------------------------------------------------------------- customer portrait


@bp.route(PREFIX + "/customers/<int:membership_id>/letter.pdf")
@staff_required("owner")
def customer_pdf(merchant, membership_id: int):
    membership = services.membership_of(db.session, merchant, membership_id)
    if membership.user.erased_at:
        abort(404)
    data = delivery.single_letter_pdf(merchant, membership)
    return _pdf_response(data, f"letter-{membership.id}.pdf")


@bp.route(PREFIX + "/customers/<int:membership_id>/address", methods=["POST"])
@staff_required("owner")
def customer_address(merchant, membership_id: int):
    membership = services.membership_of(db.session, merchant, membership_id)
    user = membership.user
    if user.erased_at:
        abort(404)
    form = {key: request.form.get(key, "") for key in ADDRESS_FIELDS}
    try:
        services.save_address(db.session, user, form)
    except ValidationFailed as error:
        return render(
            "letters/_portrait.html", status=422, merchant=merchant, membership=membership,
            letters=services.letters_of(db.session, merchant, membership.id),
            address=services.address_of(db.session, user.id), form=form,
            errors=error.details.get("errors", {}),
            consent=has_consent(db.session, user.id, merchant.id, MARKETING),
        )
    flash(_("The postal address is saved."))
    return see_other("business.customer", merchant_slug=merchant.slug, membership_id=membership.id)


# --------------------------------------------------------------------------- the customer's side


@bp.route("/letters/address", methods=["GET", "POST"])
@login_required
def my_address():
    address = services.address_of(db.session, current_user.id)
    if request.method == "GET":
        form = {key: getattr(address, key, "") if address else "" for key in ADDRESS_FIELDS}
        if not form["recipient"]:
            form["recipient"] = current_user.name
        return render("letters/address.html", form=form, errors={})
    form = {key: request.form.get(key, "") for key in ADDRESS_FIELDS}
    try:
        services.save_address(db.session, current_user, form)
    except ValidationFailed as error:
        return render("letters/address.html", block="address_form", status=422, form=form,
                      errors=error.details.get("errors", {}))
    flash(_("Your postal address is saved."))
    return see_other("letters.my_address")


def _unsubscribe_target(token: str) -> tuple[User, Merchant]:
    found = delivery.read_unsubscribe_token(token)
    if found is None:
        abort(404)
    user = db.session.get(User, found[0])
    merchant = db.session.get(Merchant, found[1])
    if user is None or merchant is None:
        abort(404)
    return user, merchant


@bp.route("/letters/unsubscribe/<token>", methods=["GET"])
def unsubscribe(token: str):
    """No sign-in needed: the signed token names the customer and the business."""
    user, merchant = _unsubscribe_target(token)
    subscribed = has_consent(db.session, user.id, merchant.id, MARKETING)
    return render("letters/unsubscribe.html", merchant=merchant, token=token, subscribed=subscribed, done=False)


@bp.route("/letters/unsubscribe/<token>", methods=["POST"])
@csrf.exempt  # the signed token is the credential; mail clients' one-click POST carries no CSRF token
def unsubscribe_confirm(token: str):
    user, merchant = _unsubscribe_target(token)
    if has_consent(db.session, user.id, merchant.id, MARKETING):
        withdraw_consent(db.session, user, merchant, MARKETING, current_app.config["CONSENT_TEXT_VERSION"])
    return render("letters/unsubscribe.html", merchant=merchant, token=token, subscribed=False, done=True)


@bp.route("/letters/o/<token>.gif")
def opened(token: str):
    letter_id = delivery.read_open_token(token)
    if letter_id is not None:
        from plugins.letters.models import Letter

        merchant_id = db.session.scalar(select(Letter.merchant_id).where(Letter.id == letter_id))
        merchant = db.session.get(Merchant, merchant_id) if merchant_id else None
        if merchant is not None and is_enabled(merchant, "letters"):
            services.mark_opened(db.session, letter_id)
    response = make_response(PIXEL)
    response.headers["Content-Type"] = "image/gif"
    response.headers["Cache-Control"] = "no-store"
    return response



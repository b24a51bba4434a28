"""Owner pages (offers, partnerships, economics, settlement) and the holder's certificate pages."""

from __future__ import annotations

from babel.numbers import format_decimal, get_decimal_symbol
from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required

from plugins.cross_marketing import services
from plugins.cross_marketing.guard import failed_lookup_guard
from webapp.plugin_api import (
    Conflict,
    NotFound,
    ValidationFailed,
    csv_response,
    db,
    merchant_plugin_blueprint,
    minor_to_decimal,
    public_url,
    render,
    render_pdf,
    see_other,
    staff_required,
)

bp = merchant_plugin_blueprint(
    "cross_marketing", __name__, url_prefix="/business/<merchant_slug>/certificates",
    template_folder="templates",
)
customer_bp = Blueprint("cross_marketing_wallet", __name__, url_prefix="/certificates")

OFFER_FIELDS = (
    "face_value", "min_purchase", "validity_days", "total_cap", "per_customer_cap", "fee",
    "message", "remainder_policy",
)
RULE_FIELDS = ("rule_min_purchase", "max_per_day")


def _form(names) -> dict[str, str]:
    return {name: request.form.get(name, "")[:300] for name in names}


def _index(merchant, status: int = 200, block: str | None = None, **context):
    context.setdefault("offer_form", {"validity_days": "30", "remainder_policy": "lost"})
    context.setdefault("offer_errors", {})
    context.setdefault("invite_errors", {})
    context.setdefault("rule_errors", {})
    context.setdefault("rule_form", {})
    partnerships = services.merchant_partnerships(db.session, merchant)
    return render(
        "cross_marketing/index.html", block=block, status=status, merchant=merchant,
        offers=services.issuer_offers(db.session, merchant),
        partnerships=partnerships,
        invitations=[p for p in partnerships if p.distributor_id == merchant.id and p.status == "invited"],
        neighbours=services.possible_distributors(db.session, merchant),
        currency=merchant.network.currency,
        major=lambda amount: str(minor_to_decimal(amount, merchant.network.currency)),
        **context,
    )


@bp.route("/")
@staff_required("owner")
def index(merchant):
    return _index(merchant)


@bp.route("/offers", methods=["POST"])
@staff_required("owner")
def create_offer(merchant):
    form = _form(OFFER_FIELDS)
    try:
        services.create_offer(db.session, merchant, form)
    except ValidationFailed as error:
        return _index(merchant, 422, block="offer_form", offer_form=form,
                      offer_errors=error.details.get("errors", {}))
    flash(_("Your offer is created. Now invite neighbours to hand it out."), "success")
    return see_other("cross_marketing.index", merchant_slug=merchant.slug)


@bp.route("/offers/<int:offer_id>/invite", methods=["POST"])
@staff_required("owner")
def invite(merchant, offer_id: int):
    try:
        partnership = services.invite(db.session, merchant, offer_id, request.form.get("distributor_id"))
    except (ValidationFailed, Conflict) as error:
        return _index(merchant, error.status_code, invite_errors={offer_id: error.message})
    flash(_("%(name)s is invited; they will see the invitation on their Certificates page.",
            name=partnership.distributor.name), "success")
    return see_other("cross_marketing.index", merchant_slug=merchant.slug)


@bp.route("/partnerships/<int:partnership_id>/answer", methods=["POST"])
@staff_required("owner")
def answer(merchant, partnership_id: int):
    accept = request.form.get("answer") == "accept"
    form = _form(RULE_FIELDS)
    try:
        services.respond(db.session, merchant, partnership_id, accept, form)
    except (ValidationFailed, Conflict) as error:
        return _index(merchant, error.status_code, rule_form={partnership_id: form},
                      rule_errors={partnership_id: error.details.get("errors") or {"form": error.message}})
    flash(_("You now hand out this certificate.") if accept else _("The invitation is declined."), "success")
    return see_other("cross_marketing.index", merchant_slug=merchant.slug)


@bp.route("/partnerships/<int:partnership_id>/rule", methods=["POST"])
@staff_required("owner")
def rule(merchant, partnership_id: int):
    form = _form(RULE_FIELDS)
    try:
        services.set_rule(db.session, merchant, partnership_id, form)
    except (ValidationFailed, Conflict) as error:
        return _index(merchant, error.status_code, rule_form={partnership_id: form},
                      rule_errors={partnership_id: error.details.get("errors") or {"form": error.message}})
    flash(_("The rule is saved."), "success")
    return see_other("cross_marketing.index", merchant_slug=merchant.slug)


@bp.route("/partnerships/<int:partnership_id>/status", methods=["POST"])
@staff_required("owner")
def status(merchant, partnership_id: int):
    action = request.form.get("action", "")
    try:
        services.change_status(db.session, merchant, partnership_id, action)
    except (ValidationFailed, Conflict) as error:
        flash(error.message, "error")
        return see_other("cross_marketing.index", merchant_slug=merchant.slug)
    messages = {
        "pause": _("The partnership is paused; no certificates are handed out until it resumes."),
        "resume": _("The partnership is running again."),
        "end": _("The partnership has ended. Certificates already issued stay valid."),
    }
    flash(messages[action], "success")
    return see_other("cross_marketing.index", merchant_slug=merchant.slug)


# --------------------------------------------------------------------------- economics


def _settlement(merchant):
    year, month = services.parse_month(request.args.get("month"))
    return services.settlement(db.session, merchant, year, month)


@bp.route("/economics")
@staff_required("owner")
def economics(merchant):
    statement = _settlement(merchant)
    return render(
        "cross_marketing/economics.html", merchant=merchant,
        figures=services.economics(db.session, merchant, months=12),
        statement=statement, currency=merchant.network.currency,
        months=services.month_keys(services.utcnow().date(), 12),
    )


@bp.route("/settlement.csv")
@staff_required("owner")
def settlement_csv(merchant):
    """The month's settlement for a spreadsheet: headers in the reader's language, amounts in
    currency units written as the locale writes them (and ";" between columns where the decimal
    mark is a comma). ``?format=machine`` gives the stable variant for programs: English
    snake_case headers, amounts in minor units, commas (documented in the README)."""
    statement = _settlement(merchant)
    machine = request.args.get("format") == "machine"
    if machine:  # stable English headers and minor units, for programs
        rows = [["month", "counterpart", "role", "redeemed", "value_used_minor", "fees_minor",
                 "amount_minor", "currency"]]

        def amount(value):
            return value
    else:  # the reader's headers, currency units and decimal mark (and ";" where "," is decimal)
        locale = str(get_locale() or "en")
        rows = [[_("Month"), _("Neighbour"), _("Role"), _("Certificates redeemed"), _("Value used"),
                 _("Fees"), _("Amount"), _("Currency")]]

        def amount(value):
            return format_decimal(minor_to_decimal(value, statement.currency), group_separator=False, locale=locale)
    rows += [
        [statement.month, line.counterpart, line.role, line.redeemed, amount(line.value_used),
         amount(line.fees), amount(line.amount), statement.currency]
        for line in statement.lines
    ]
    rows.append([statement.month, "NET" if machine else _("Net"), "", "", "", "", amount(statement.net),
                 statement.currency])
    # The shared helper neutralises a counterpart name that a spreadsheet would run as a formula.
    filename = f"settlement-{merchant.slug}-{statement.month}{'-machine' if machine else ''}.csv"
    delimiter = "," if machine or get_decimal_symbol(locale) != "," else ";"
    return csv_response(rows, filename, stream=False, delimiter=delimiter, bom=not machine)  # programs: no BOM


@bp.route("/settlement.pdf")
@staff_required("owner")
def settlement_pdf(merchant):
    statement = _settlement(merchant)
    html = render_template("cross_marketing/settlement_pdf.html", statement=statement, merchant_name=merchant.name)
    pdf = render_pdf(html)  # the core's sandboxed renderer: data: URLs only, a time limit
    filename = f"settlement-{merchant.slug}-{statement.month}.pdf"
    return Response(pdf, mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.route("/network")
@staff_required("owner")
def network(merchant):
    """Customer flow between neighbours, for every member merchant of the network."""
    return render("cross_marketing/network.html", merchant=merchant,
                  flows=services.network_flows(db.session, merchant.network_id))


# --------------------------------------------------------------------------- the holder's side


@customer_bp.route("/", endpoint="index")
@login_required
def wallet():
    certificates = services.holder_certificates(db.session, current_user.id)
    return render("cross_marketing/wallet.html", certificates=certificates,
                  display_code=services.display_code, gift_link=None)


def _certificate_page(certificate, status: int = 200, gift_link: str | None = None, error: str | None = None):
    return render(
        "cross_marketing/certificate.html", block="certificate", status=status, certificate=certificate,
        display_code=services.display_code, gift_link=gift_link, error=error,
    )


@customer_bp.route("/<int:certificate_id>")
@login_required
def certificate(certificate_id: int):
    try:
        found = services.holder_certificate(db.session, current_user.id, certificate_id)
    except NotFound:
        abort(404)
    return _certificate_page(found)


@customer_bp.route("/c/<code>")
@login_required
def by_code(code: str):
    """The QR code's link: the holder's page for the holder; the till with the code filled in
    for staff of the business that accepts it; for everyone else unknown, used-by-others and
    foreign codes all answer the same 404."""
    at_till = services.till_link_for_staff(db.session, current_user.id, code[:60])
    if at_till is not None:
        if at_till.membership_id is None:
            flash(_("Find the customer first, then enter the certificate code %(code)s.", code=at_till.code))
            return redirect(url_for("cashier.till", merchant_slug=at_till.merchant_slug), code=303)
        return redirect(url_for("cashier.till", merchant_slug=at_till.merchant_slug, member=at_till.membership_id,
                                opt_certificate=at_till.code), code=303)
    try:
        found = services.certificate_by_code(db.session, current_user.id, code[:60], failed_lookup_guard)
    except NotFound:
        abort(404)
    return redirect(url_for("cross_marketing_wallet.certificate", certificate_id=found.id), code=303)


@customer_bp.route("/<int:certificate_id>/<action>", methods=["POST"])
@login_required
def act(certificate_id: int, action: str):
    """Attach to the next purchase, detach, create or cancel a gift link."""
    try:
        if action == "attach":
            found = services.attach(db.session, current_user.id, certificate_id)
            flash(_("The certificate will be offered at %(name)s's till when you show your card.",
                    name=found.issuer.name), "success")
        elif action == "detach":
            services.detach(db.session, current_user.id, certificate_id)
            flash(_("The certificate is no longer attached."), "success")
        elif action == "gift":
            token = services.create_gift_link(db.session, current_user.id, certificate_id)
            found = services.holder_certificate(db.session, current_user.id, certificate_id)
            link = public_url("cross_marketing_wallet.gift", token=token)
            return _certificate_page(found, gift_link=link)
        elif action == "cancel-gift":
            services.cancel_gift(db.session, current_user.id, certificate_id)
            flash(_("The gift link no longer works."), "success")
        else:
            abort(404)
    except NotFound:
        abort(404)
    except Conflict as error:
        found = services.holder_certificate(db.session, current_user.id, certificate_id)
        return _certificate_page(found, status=409, error=error.message)
    return see_other("cross_marketing_wallet.certificate", certificate_id=certificate_id)


@customer_bp.route("/gift/<token>", methods=["GET", "POST"])
@login_required
def gift(token: str):
    """A friend's gift: shown after signing in, claimed with one press."""
    try:
        found = services.gift_preview(db.session, token[:100])
    except NotFound as error:
        return render("cross_marketing/gift.html", certificate=None, error=error.message, token=token), 404
    if request.method == "GET":
        return render("cross_marketing/gift.html", certificate=found, error=None, token=token)
    try:
        claimed = services.claim_gift(db.session, current_user.id, token[:100])
    except (Conflict, NotFound) as error:
        return render("cross_marketing/gift.html", certificate=found, error=error.message, token=token), 409
    flash(_("The certificate is yours now. Use it at %(name)s.", name=claimed.issuer.name), "success")
    return see_other("cross_marketing_wallet.certificate", certificate_id=claimed.id)

"""Owner pages (deals, ideas, figures) and customer pages (deal with live progress, ideas board)."""

from __future__ import annotations

import csv
import io
import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import click
from flask import (
    Response,
    abort,
    current_app,
    flash,
    g,
    make_response,
    request,
    send_from_directory,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required

from plugins.group_deals import services
from webapp.plugin_api import (
    Conflict,
    NeighbourlyError,
    ValidationFailed,
    db,
    find_membership,
    hooks_for,
    merchant_plugin_blueprint,
    minor_to_decimal,
    network_zone,
    photos,
    render,
    see_other,
    staff_required,
    use_network_zone,
    utcnow,
)

bp = merchant_plugin_blueprint("group_deals", __name__, template_folder="templates")

DEAL_FIELDS = (
    "title", "description", "regular_price", "max_participants", "max_quantity", "deadline", "redeem_days",
    *(f"tier{number}_{part}" for number in range(1, services.MAX_TIERS + 1) for part in ("participants", "price")),
)


def _form(names) -> dict[str, str]:
    return {name: request.form.get(name, "")[:3000] for name in names}


def _major(merchant, amount: int | None) -> str:
    return "" if amount is None else str(minor_to_decimal(amount, merchant.network.currency))


def _deal_form(merchant, deal) -> dict[str, str]:
    """The owner's form filled from a deal (prices in major units, the deadline in local time)."""
    local = deal.deadline.astimezone(network_zone(merchant.network))
    form = {
        "title": deal.title, "description": deal.description,
        "regular_price": _major(merchant, deal.regular_price),
        "max_participants": str(deal.max_participants or ""), "max_quantity": str(deal.max_quantity),
        "deadline": local.strftime("%Y-%m-%dT%H:%M"), "redeem_days": str(deal.redeem_days),
    }
    for tier in deal.tiers:
        form[f"tier{tier.position}_participants"] = str(tier.participants)
        form[f"tier{tier.position}_price"] = _major(merchant, tier.price)
    return form


def _clean(merchant, form):
    return services.clean_deal(form, merchant.network.currency, network_zone(merchant.network))


# --------------------------------------------------------------------------- owner: deals


@bp.route("/business/<merchant_slug>/deals/")
@staff_required("owner")
def index(merchant):
    return render("group_deals/index.html", merchant=merchant, deals=services.owner_deals(db.session, merchant),
                  progress=services.progress)


def _edit_page(merchant, deal, form, errors, status=200, idea=None):
    return render(
        "group_deals/edit.html", block="deal_form", status=status, merchant=merchant, deal=deal,
        form=form, errors=errors, idea=idea, tier_numbers=range(1, services.MAX_TIERS + 1),
    )


@bp.route("/business/<merchant_slug>/deals/new", methods=["GET", "POST"])
@staff_required("owner")
def create(merchant):
    if request.method == "GET":
        start = (utcnow() + timedelta(days=7)).astimezone(network_zone(merchant.network))
        form = {"max_quantity": "1", "redeem_days": "14", "deadline": start.strftime("%Y-%m-%dT18:00")}
        return _edit_page(merchant, None, form, {})
    form = _form(DEAL_FIELDS)
    try:
        deal = services.create_draft(db.session, merchant, _clean(merchant, form))
    except ValidationFailed as error:
        return _edit_page(merchant, None, form, error.details.get("errors", {}), 422)
    flash(_("The draft is saved. Check it, add a photo, then publish it."), "success")
    return see_other("group_deals.edit", merchant_slug=merchant.slug, deal_id=deal.id)


@bp.route("/business/<merchant_slug>/deals/<int:deal_id>/edit", methods=["GET", "POST"])
@staff_required("owner")
def edit(merchant, deal_id: int):
    deal = services.owner_deal(db.session, merchant, deal_id)
    if request.method == "GET":
        return _edit_page(merchant, deal, _deal_form(merchant, deal), {})
    form = _form(DEAL_FIELDS)
    try:
        services.update_draft(db.session, merchant, deal_id, _clean(merchant, form))
    except ValidationFailed as error:
        return _edit_page(merchant, deal, form, error.details.get("errors", {}), 422)
    flash(_("The draft is saved."), "success")
    return see_other("group_deals.edit", merchant_slug=merchant.slug, deal_id=deal_id)


@bp.route("/business/<merchant_slug>/deals/<int:deal_id>/publish", methods=["POST"])
@staff_required("owner")
def publish(merchant, deal_id: int):
    services.publish(db.session, merchant, deal_id)
    flash(_("The deal is published: customers can join it now. Its tiers can no longer change."), "success")
    return see_other("group_deals.index", merchant_slug=merchant.slug)


@bp.route("/business/<merchant_slug>/deals/<int:deal_id>/delete", methods=["POST"])
@staff_required("owner")
def delete(merchant, deal_id: int):
    photo = services.delete_draft(db.session, merchant, deal_id)
    _remove_file(photo)
    flash(_("The draft is deleted."), "success")
    return see_other("group_deals.index", merchant_slug=merchant.slug)


def _remove_file(filename: str | None) -> None:
    if filename:
        (Path(current_app.config["UPLOAD_FOLDER"]) / filename).unlink(missing_ok=True)


@bp.route("/business/<merchant_slug>/deals/<int:deal_id>/photo", methods=["POST"])
@staff_required("owner")
def photo(merchant, deal_id: int):
    deal = services.owner_deal(db.session, merchant, deal_id)
    upload = request.files.get("photo")
    config = current_app.config
    limits = photos.Limits(max_bytes=config["MAX_PHOTO_BYTES"], max_pixels=config["MAX_PHOTO_PIXELS"])
    try:
        data = photos.read_limited(upload.stream, limits.max_bytes) if upload else b""
        encoded, extension, _width, _height = photos.reencode(data, limits)
    except ValidationFailed as error:
        return _edit_page(merchant, deal, _deal_form(merchant, deal), {"photo": error.message}, 422)
    folder = Path(config["UPLOAD_FOLDER"])
    folder.mkdir(parents=True, exist_ok=True)
    filename = f"deal-{secrets.token_hex(16)}.{extension}"
    partial = folder / f".{filename}.part"
    partial.write_bytes(encoded)
    os.replace(partial, folder / filename)
    try:
        previous = services.set_photo(db.session, merchant, deal_id, filename)
    except NeighbourlyError:
        _remove_file(filename)  # nothing half-written: no file without its row
        raise
    _remove_file(previous)
    flash(_("The photo is saved."), "success")
    return see_other("group_deals.edit", merchant_slug=merchant.slug, deal_id=deal_id)


@bp.route("/business/<merchant_slug>/deals/figures")
@staff_required("owner")
def figures(merchant):
    rows = services.figures(db.session, merchant)
    if request.args.get("format") == "csv":
        return _figures_csv(merchant, rows)
    return render("group_deals/figures.html", merchant=merchant, rows=rows, currency=merchant.network.currency)


def _figures_csv(merchant, rows) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([
        "deal", "status", "deadline", "views", "joined", "left", "released", "vouchers", "redeemed",
        "units_redeemed", "final_price", "regular_price", "revenue_at_deal_price", "revenue_at_regular_price",
        "conversion_pct", "currency",
    ])
    currency = merchant.network.currency
    for row in rows:
        deal = row.deal
        writer.writerow([services.csv_cell(value) for value in (
            deal.title, deal.status, deal.deadline.isoformat(), deal.views, row.joined, row.left,
            row.released, row.vouchers, row.redeemed, row.units_redeemed,
            _major(merchant, deal.final_price), _major(merchant, deal.regular_price),
            _major(merchant, row.revenue_deal), _major(merchant, row.revenue_regular),
            "" if row.conversion_pct is None else row.conversion_pct, currency,
        )])
    response = make_response(out.getvalue())
    response.mimetype = "text/csv"
    response.headers["Content-Disposition"] = f'attachment; filename="group-deals-{merchant.slug}.csv"'
    return response


# --------------------------------------------------------------------------- owner: ideas


@bp.route("/business/<merchant_slug>/deals/ideas")
@staff_required("owner")
def ideas(merchant):
    return render("group_deals/owner_ideas.html", merchant=merchant,
                  ideas=services.ideas_by_votes(db.session, merchant.id), errors={})


@bp.route("/business/<merchant_slug>/deals/ideas/<int:idea_id>/answer", methods=["POST"])
@staff_required("owner")
def answer(merchant, idea_id: int):
    try:
        services.answer_idea(db.session, merchant, idea_id, request.form.get("answer", "")[:2000])
    except ValidationFailed as error:
        return render("group_deals/owner_ideas.html", status=422, merchant=merchant,
                      ideas=services.ideas_by_votes(db.session, merchant.id), errors={idea_id: error.message})
    flash(_("Your answer is shown under the idea."), "success")
    return see_other("group_deals.ideas", merchant_slug=merchant.slug)


@bp.route("/business/<merchant_slug>/deals/ideas/<int:idea_id>/deal", methods=["GET", "POST"])
@staff_required("owner")
def idea_deal(merchant, idea_id: int):
    idea = services.get_idea(db.session, merchant, idea_id)
    if request.method == "GET":
        start = (utcnow() + timedelta(days=7)).astimezone(network_zone(merchant.network))
        form = {"title": idea.text[:120], "max_quantity": "1", "redeem_days": "14",
                "deadline": start.strftime("%Y-%m-%dT18:00"), "reward_points": "100"}
        return _edit_page(merchant, None, form, {}, idea=idea)
    form = _form((*DEAL_FIELDS, "reward_points"))
    try:
        deal = services.idea_to_draft(db.session, merchant, idea_id, _clean(merchant, form),
                                      form.get("reward_points", ""))
    except ValidationFailed as error:
        return _edit_page(merchant, None, form, error.details.get("errors", {}), 422, idea=idea)
    flash(_("The idea is now a draft deal; its author gets the reward when you publish it."), "success")
    return see_other("group_deals.edit", merchant_slug=merchant.slug, deal_id=deal.id)


# --------------------------------------------------------------------------- customers


def _public_merchant():
    merchant = g.plugin_merchant
    if merchant.status != "active":
        abort(404)
    use_network_zone(merchant.network)
    return merchant


def _member(merchant):
    if not current_user.is_authenticated:
        return None
    membership = find_membership(db.session, current_user.id, merchant.id)
    return membership if membership is not None and membership.left_at is None else None


def _join_link(merchant) -> str:
    """The core's joining page (consent included); a referral code the visitor arrived with
    (``?ref=`` on a shared deal link) goes along, so the core's joining hooks see it."""
    ref = "".join(ch for ch in request.args.get("ref", "") if ch.isascii() and ch.isalnum())[:24]
    return url_for("public.join", code=merchant.join_code, ref=ref or None)


@bp.route("/m/<merchant_slug>/deals/")
def board(merchant_slug: str):
    merchant = _public_merchant()
    ideas = services.ideas_by_votes(db.session, merchant.id, limit=50)
    voted = services.my_votes(db.session, current_user.id, [i.id for i in ideas]) if current_user.is_authenticated else set()
    return render(
        "group_deals/board.html", block="ideas", merchant=merchant,
        deals=services.open_deals(db.session, [merchant.id]), ideas=ideas, voted=voted,
        member=_member(merchant), join_link=_join_link(merchant), progress=services.progress, error=None,
    )


def _share_link(merchant, deal, member) -> str:
    """The deal's address; a member's carries what other plugins add (a referral code)."""
    link = services.deal_link(merchant, deal)
    if member is None:
        return link
    params: dict[str, str] = {}
    for found in hooks_for(merchant).neighbourly_collect_share_params(merchant=merchant, membership=member):
        params.update({str(key): str(value) for key, value in (found or {}).items() if value})
    return f"{link}?{urlencode(sorted(params.items()))}" if params else link


def _deal_page(merchant, deal, status=200, error=None, block=None):
    pledge = services.my_pledge(db.session, deal.id, current_user.id) if current_user.is_authenticated else None
    member = _member(merchant)
    return render(
        "group_deals/deal.html", block=block, status=status, merchant=merchant, deal=deal,
        view=services.progress(deal), pledge=pledge, member=member, error=error,
        join_link=_join_link(merchant), currency=merchant.network.currency, now=utcnow(),
        share_link=_share_link(merchant, deal, member),
    )


@bp.route("/m/<merchant_slug>/deals/<int:deal_id>")
def deal(merchant_slug: str, deal_id: int):
    merchant = _public_merchant()
    found = services.public_deal(db.session, merchant, deal_id)
    services.count_view(db.session, found.id)
    return _deal_page(merchant, found)


@bp.route("/m/<merchant_slug>/deals/<int:deal_id>/progress")
def progress(merchant_slug: str, deal_id: int):
    """The live region alone (polled by htmx); the statements do not grow with participants."""
    merchant = _public_merchant()
    found = services.public_deal(db.session, merchant, deal_id)
    return render(
        "group_deals/deal.html", block="progress", merchant=merchant, deal=found,
        view=services.progress(found), currency=merchant.network.currency, now=utcnow(),
    )


@bp.route("/m/<merchant_slug>/deals/<int:deal_id>/join", methods=["POST"])
@login_required
def join(merchant_slug: str, deal_id: int):
    merchant = _public_merchant()
    found = services.public_deal(db.session, merchant, deal_id)
    try:
        services.join(db.session, merchant, found.id, current_user.id,
                      request.form.get("quantity", "1")[:12], request.form.get("kind", "current"))
    except (ValidationFailed, Conflict) as error:
        return _deal_page(merchant, found, error.status_code, error.message, block="join")
    flash(_("You are in. We will e-mail you when the deal closes."), "success")
    return see_other("group_deals.deal", merchant_slug=merchant.slug, deal_id=found.id)


@bp.route("/m/<merchant_slug>/deals/<int:deal_id>/leave", methods=["POST"])
@login_required
def leave(merchant_slug: str, deal_id: int):
    merchant = _public_merchant()
    found = services.public_deal(db.session, merchant, deal_id)
    try:
        services.leave(db.session, merchant, found.id, current_user.id)
    except Conflict as error:
        return _deal_page(merchant, found, error.status_code, error.message, block="join")
    flash(_("You left the deal; your place is free for someone else."), "success")
    return see_other("group_deals.deal", merchant_slug=merchant.slug, deal_id=found.id)


@bp.route("/m/<merchant_slug>/deals/<int:deal_id>/photo")
def deal_photo(merchant_slug: str, deal_id: int):
    merchant = _public_merchant()
    found = services.public_deal(db.session, merchant, deal_id)
    if not found.photo_filename:
        abort(404)
    return send_from_directory(current_app.config["UPLOAD_FOLDER"], found.photo_filename, max_age=86400)


@bp.route("/business/<merchant_slug>/deals/<int:deal_id>/photo")
@staff_required("owner")
def draft_photo(merchant, deal_id: int):
    found = services.owner_deal(db.session, merchant, deal_id)
    if not found.photo_filename:
        abort(404)
    return send_from_directory(current_app.config["UPLOAD_FOLDER"], found.photo_filename, max_age=0)


@bp.route("/m/<merchant_slug>/ideas", methods=["POST"])
@login_required
def propose(merchant_slug: str):
    merchant = _public_merchant()
    try:
        services.propose_idea(db.session, merchant, current_user.id, request.form.get("text", "")[:2000])
    except (ValidationFailed, Conflict) as error:
        ideas = services.ideas_by_votes(db.session, merchant.id, limit=50)
        return render(
            "group_deals/board.html", block="ideas", status=error.status_code, merchant=merchant,
            deals=services.open_deals(db.session, [merchant.id]), ideas=ideas,
            voted=services.my_votes(db.session, current_user.id, [i.id for i in ideas]),
            member=_member(merchant), join_link=_join_link(merchant), progress=services.progress,
            error=error.message, text=request.form.get("text", "")[:500],
        )
    flash(_("Thank you! Your idea is on the board."), "success")
    return see_other("group_deals.board", merchant_slug=merchant.slug)


@bp.route("/m/<merchant_slug>/ideas/<int:idea_id>/vote", methods=["POST"])
@login_required
def vote(merchant_slug: str, idea_id: int):
    merchant = _public_merchant()
    services.vote(db.session, merchant, idea_id, current_user.id, request.form.get("vote") != "0")
    return see_other("group_deals.board", merchant_slug=merchant.slug)


# --------------------------------------------------------------------------- command line


@bp.cli.command("close")
def close_command() -> None:
    """Close every deal past its deadline now (the worker also does it every minute)."""
    counts = services.close_due(db.session)
    expired = services.expire_vouchers(db.session)
    click.echo(f"closed {counts['closed']}, cancelled {counts['cancelled']}, vouchers expired {expired}")

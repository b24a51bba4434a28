"""Referral pages: the opened link (counts it, then the join page) and the owner's overview."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from plugins.referrals import services
from plugins.referrals.models import ReferralCode
from webapp.plugin_api import (
    Conflict,
    InsufficientPoints,
    Merchant,
    NotFound,
    db,
    is_enabled,
    merchant_plugin_blueprint,
    render,
    see_other,
    staff_required,
)

bp = merchant_plugin_blueprint(
    "referrals", __name__, url_prefix="/business/<merchant_slug>/referrals", template_folder="templates",
)
public_bp = Blueprint("referrals_public", __name__, url_prefix="/r")


@public_bp.route("/<code>")
def open_link(code: str):
    """A shared link: record the open (with the address, for the weekly limit) and go join."""
    row = db.session.scalar(select(ReferralCode).where(ReferralCode.code == services.normalize_code(code)))
    merchant = db.session.get(Merchant, row.merchant_id) if row else None
    if merchant is None or merchant.status != "active" or not is_enabled(merchant, "referrals"):
        abort(404)
    services.record_open(db.session, merchant, row.code, request.remote_addr)
    return redirect(url_for("public.join", code=merchant.join_code, ref=row.code), code=303)


@bp.route("/")
@staff_required("owner")
def index(merchant):
    page = max(1, request.args.get("page", 1, type=int) or 1)
    return render(
        "referrals/index.html", merchant=merchant, currency=merchant.network.currency,
        funnel=services.funnel(db.session, merchant), cost=services.cost(db.session, merchant),
        top=services.top_referrers(db.session, merchant), held=services.held_links(db.session, merchant),
        rewards=services.recent_rewards(db.session, merchant, page), page=page,
        first_name=services.first_name,
    )


@bp.route("/held/<int:link_id>", methods=["POST"])
@staff_required("owner")
def review(merchant, link_id: int):
    approve = request.form.get("decision") == "approve"
    try:
        link = services.review(db.session, merchant, link_id, approve)
    except Conflict as error:
        flash(error.message, "error")
        return see_other("referrals.index", merchant_slug=merchant.slug)
    flash(_("Referral approved.") if link.status == "active" else _("Referral rejected."), "success")
    return see_other("referrals.index", merchant_slug=merchant.slug)


@bp.route("/rewards/<int:reward_id>/reverse", methods=["POST"])
@staff_required("owner")
def reverse(merchant, reward_id: int):
    try:
        services.reverse_reward(db.session, merchant, reward_id)
    except NotFound:
        raise
    except (Conflict, InsufficientPoints) as error:
        flash(error.message, "error")
        return see_other("referrals.index", merchant_slug=merchant.slug)
    flash(_("The reward was reversed and the points taken back."), "success")
    return see_other("referrals.index", merchant_slug=merchant.slug)

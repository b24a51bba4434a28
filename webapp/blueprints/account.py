"""The customer's account: profile, consents, sessions, data export and erasure."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, make_response, redirect, request, session
from flask_babel import gettext as _
from flask_login import current_user, login_required, logout_user

from webapp.blueprints.auth import sign_in
from webapp.errors import NeighbourlyError, NotFound, ValidationFailed
from webapp.extensions import db
from webapp.models.base import utcnow
from webapp.services import accounts, memberships, points, privacy
from webapp.unit_of_work import unit_of_work
from webapp.web import render, safe_next, see_other

bp = Blueprint("account", __name__, url_prefix="/account")

CONSENT_PURPOSES = (memberships.DATA_PROCESSING, memberships.MARKETING)


# (marker in the User-Agent, name shown) — first match wins, so Edge and Opera precede Chrome.
_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("YaBrowser", "Yandex Browser"),
             ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari"))
_SYSTEMS = (("iPhone", "iPhone"), ("iPad", "iPad"), ("Android", "Android"), ("Windows", "Windows"),
            ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"))


def describe_device(user_agent: str | None) -> str:
    """ "Firefox on Android" rather than a 120-character User-Agent string."""
    agent = user_agent or ""
    browser = next((name for marker, name in _BROWSERS if marker in agent), None)
    system = next((name for marker, name in _SYSTEMS if marker in agent), None)
    if browser and system:
        return _("%(browser)s on %(system)s", browser=browser, system=system)
    return browser or system or (agent[:60] if agent else _("Unknown browser"))


@bp.context_processor
def _helpers():
    return {"describe_device": describe_device}


def _user():
    return current_user._get_current_object()


def _account_page(status: int = 200, errors: dict[str, str] | None = None, form=None):
    user = _user()
    return render(
        "account/index.html",
        status=status,
        errors=errors or {},
        form=form if form is not None else {},
        user=user,
        sessions=accounts.active_sessions(db.session, user.id),
        current_session_hash=accounts.session_token_hash(user.get_id()),
        consents=memberships.consent_overview(db.session, user.id),
        birthday_consent=points.birthday_consent(db.session, user.id),
        birthday_consent_text=points.birthday_consent_text(),
    )


@bp.route("/")
@login_required
def index():
    return _account_page()


@bp.route("/profile", methods=["POST"])
@login_required
def profile():
    form = request.form
    try:
        accounts.update_profile(
            db.session,
            _user(),
            name=form.get("name", ""),
            phone=form.get("phone"),
            locale=form.get("locale") or None,
            languages=list(current_app.config["LANGUAGES"]),
        )
    except NeighbourlyError as error:
        return _account_page(error.status_code, {"profile": error.message}, form)
    if _user().locale:
        session["locale"] = _user().locale
    flash(_("Your profile is saved."), "success")
    return see_other("account.index")


@bp.route("/birthday", methods=["POST"])
@login_required
def birthday():
    """The birthday (day and month, year optional) with its own consent; unticking removes it."""
    form = request.form
    consent = form.get("birthday_consent") == "yes"
    try:
        parsed = None
        if consent:
            parsed = points.parse_birthday(
                form.get("birth_day", "")[:4], form.get("birth_month", "")[:4], form.get("birth_year", "")[:6]
            )
        points.set_birthday(
            db.session, _user(), parsed, consent, current_app.config["CONSENT_TEXT_VERSION"]
        )
    except NeighbourlyError as error:
        return _account_page(error.status_code, {"birthday": error.message}, form)
    flash(_("Your birthday is saved.") if consent else _("Your birthday is removed."), "success")
    return see_other("account.index", _anchor="birthday")


@bp.route("/password", methods=["POST"])
@login_required
def password():
    form = request.form
    user = _user()
    try:
        if form.get("new_password", "") != form.get("repeat_password", ""):
            raise ValidationFailed(_("The two new passwords are not the same."))
        accounts.change_password(
            db.session, user, form.get("current_password", ""), form.get("new_password", "")
        )
    except NeighbourlyError as error:
        return _account_page(error.status_code, {"password": error.message})
    # Every session ended with the change, this one included; start a fresh one here.
    sign_in(user)
    flash(_("Your password is changed. Every other device has been signed out."), "success")
    return see_other("account.index")


@bp.route("/sessions/<int:session_id>/revoke", methods=["POST"])
@login_required
def revoke_session(session_id: int):
    user = _user()
    current_hash = accounts.session_token_hash(user.get_id())
    try:
        row = accounts.revoke_user_session(db.session, user.id, session_id)
    except NotFound:
        abort(404)
    if row.token_hash == current_hash:
        logout_user()
        session.clear()
        flash(_("You are signed out."), "info")
        return see_other("auth.login")
    flash(_("That session is signed out."), "success")
    return see_other("account.index", _anchor="sessions")


@bp.route("/sessions/revoke-others", methods=["POST"])
@login_required
def revoke_other_sessions():
    user = _user()
    ended = accounts.revoke_other_sessions(db.session, user.id, user.get_id())
    flash(
        _("Signed out everywhere else (%(count)s sessions).", count=ended)
        if ended
        else _("There were no other sessions."),
        "success",
    )
    return see_other("account.index", _anchor="sessions")


@bp.route("/consents/<int:merchant_id>", methods=["POST"])
@login_required
def consent(merchant_id: int):
    """Grant or withdraw one consent at one merchant: the same single click either way."""
    user = _user()
    purpose = request.form.get("purpose", "")
    action = request.form.get("action", "")
    if purpose not in CONSENT_PURPOSES or action not in ("grant", "withdraw"):
        abort(400)
    try:
        merchant = memberships.consent_merchant(db.session, user.id, merchant_id)
    except NotFound:
        abort(404)
    try:
        changed = memberships.change_consent(
            db.session, user, merchant, purpose, action == "grant",
            text_version=current_app.config["CONSENT_TEXT_VERSION"],
        )
    except NeighbourlyError as error:
        flash(error.message, "error")
        return see_other("account.index", _anchor="consents")
    if changed:
        flash(_consent_message(purpose, action == "grant", merchant.name), "success")
    return see_other("account.index", _anchor="consents")


def _consent_message(purpose: str, granted: bool, name: str) -> str:
    if purpose == memberships.DATA_PROCESSING:
        if granted:
            return _("Your card at %(name)s is open again.", name=name)
        return _(
            "Consent withdrawn: %(name)s no longer processes your data and your card is closed. "
            "Your points are kept if you come back.",
            name=name,
        )
    if granted:
        return _("%(name)s may now send you news and offers.", name=name)
    return _("%(name)s will not send you news and offers any more.", name=name)


@bp.route("/export")
@login_required
def export():
    """Everything stored about the customer, as a JSON file to keep."""
    body = privacy.export_json(db.session, _user())
    response = make_response(body)
    response.mimetype = "application/json"
    filename = f"neighbourly-my-data-{utcnow():%Y-%m-%d}.json"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/erase", methods=["POST"])
@login_required
def erase():
    user = _user()
    try:
        privacy.check_erasure_confirmation(user, request.form.get("confirm_email", ""))
        privacy.erase_customer(
            db.session, user, text_version=current_app.config["CONSENT_TEXT_VERSION"]
        )
    except NeighbourlyError as error:
        return _account_page(error.status_code, {"erase": error.message})
    logout_user()
    session.clear()
    return see_other("account.erased")


@bp.route("/erased")
def erased():
    return render("account/erased.html")


@bp.route("/locale", methods=["POST"])
def set_locale():
    """Remember the chosen language: in the profile when signed in, else in the session."""
    locale = request.form.get("locale", "")
    if locale in current_app.config["LANGUAGES"]:
        session["locale"] = locale
        if current_user.is_authenticated:
            with unit_of_work(db.session):
                current_user.locale = locale
    return redirect(safe_next(request.form.get("next"), "/"), code=303)

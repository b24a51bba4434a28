"""Sign-in, sign-out, registration and password reset by e-mailed link."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from webapp.errors import NeighbourlyError
from webapp.extensions import db, limiter
from webapp.mail import in_recipient_language, send_email
from webapp.services import accounts
from webapp.unit_of_work import unit_of_work
from webapp.web import landing_url, public_url, render, safe_next

bp = Blueprint("auth", __name__, url_prefix="/auth")


def sign_in(user) -> None:
    """Start a fresh server-side session for ``user`` in this browser.

    A language chosen in this browser before signing in stays chosen, and becomes the account's
    when it has none of its own (so its e-mails follow it too).
    """
    chosen = session.get("locale")
    session.clear()  # no fixation: a new session cookie after sign-in
    if chosen in current_app.config["LANGUAGES"]:
        session["locale"] = chosen
        if not user.locale:
            user.locale = chosen
    session_id = accounts.start_session(db.session, user, request.user_agent.string or "")
    accounts.load_session_user(db.session, session_id)
    login_user(user)
    session.permanent = True


def _login_rate_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_rate_limit, methods=["POST"], deduct_when=lambda response: response.status_code != 303)
def login():
    # Without a page to return to, each person lands where their work is (``landing_url``).
    next_url = safe_next(request.values.get("next"), "")
    if current_user.is_authenticated and request.method == "GET":
        return redirect(next_url or landing_url(current_user))
    error = None
    email = request.form.get("email", "")
    if request.method == "POST":
        user = accounts.authenticate(db.session, email, request.form.get("password", ""))
        if user is not None:
            sign_in(user)
            return redirect(next_url or landing_url(user), code=303)
        error = _("The e-mail or password is not right.")
    status = 422 if error else 200
    return render("auth/login.html", block="form", status=status, error=error, email=email, next=next_url)


@bp.route("/logout", methods=["POST"])
def logout():
    if current_user.is_authenticated:
        accounts.revoke_session(db.session, current_user.get_id())
        logout_user()
    chosen = session.get("locale")
    session.clear()
    if chosen in current_app.config["LANGUAGES"]:
        session["locale"] = chosen  # signing out does not change the language on the screen
    flash(_("You are signed out."), "info")
    return redirect(url_for("public.index"), code=303)


@bp.route("/register", methods=["GET", "POST"])
def register():
    next_url = safe_next(request.values.get("next"), url_for("wallet.index"))
    errors: dict[str, str] = {}
    form = request.form
    if request.method == "POST":
        try:
            user = accounts.register_user(
                db.session,
                email=form.get("email", ""),
                password=form.get("password", ""),
                name=form.get("name", ""),
                phone=form.get("phone"),
                locale=session.get("locale"),
            )
        except NeighbourlyError as error:
            errors["form"] = error.message
        else:
            sign_in(user)
            flash(_("Welcome, %(name)s! Your account is ready.", name=user.first_name), "success")
            return redirect(next_url, code=303)
    status = 422 if errors else 200
    return render("auth/register.html", block="form", status=status, errors=errors, form=form, next=next_url)


@bp.route("/reset", methods=["GET", "POST"])
@limiter.limit("5 per minute", methods=["POST"])
def request_reset():
    sent = False
    if request.method == "POST":
        user = accounts.find_user_by_email(db.session, request.form.get("email", ""))
        if user is not None and user.erased_at is None:
            # The token and its e-mail (an outbox row) commit together.
            with unit_of_work(db.session), in_recipient_language(user):
                token = accounts.create_reset_token(db.session, user)
                link = public_url("auth.reset", token=token)
                send_email(
                    to=user.email,
                    subject=_("Reset your Neighbourly password"),
                    text=_(
                        "Hello %(name)s,\n\nOpen this link within two hours to choose a new password:\n"
                        "%(link)s\n\nIf you did not ask for this, ignore this e-mail; your password stays the same.",
                        name=user.first_name, link=link,
                    ),
                )
        sent = True  # the same answer whether or not the address is known
    return render("auth/request_reset.html", sent=sent)


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset(token: str):
    error, status = None, 200
    if request.method == "POST":
        try:
            accounts.reset_password(db.session, token, request.form.get("password", ""))
        except NeighbourlyError as failure:
            error, status = failure.message, failure.status_code
        else:
            flash(_("Your password is changed. Sign in with the new one."), "success")
            return redirect(url_for("auth.login"), code=303)
    return render("auth/reset.html", status=status, error=error, token=token)

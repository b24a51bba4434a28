"""The customer's account: profile, consents, sessions, data export and erasure."""

from flask import Blueprint, current_app, redirect, request, session
from flask_login import current_user, login_required

from webapp.extensions import db
from webapp.web import safe_next

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.route("/")
@login_required
def index():
    return "account"


@bp.route("/locale", methods=["POST"])
def set_locale():
    """Remember the chosen language: in the profile when signed in, else in the session."""
    locale = request.form.get("locale", "")
    if locale in current_app.config["LANGUAGES"]:
        session["locale"] = locale
        if current_user.is_authenticated:
            current_user.locale = locale
            db.session.commit()
    return redirect(safe_next(request.form.get("next"), "/"), code=303)

"""The customer's wallet (placeholder)."""

from flask import Blueprint
from flask_login import login_required

bp = Blueprint("wallet", __name__, url_prefix="/wallet")


@bp.route("/")
@login_required
def index():
    return "wallet"

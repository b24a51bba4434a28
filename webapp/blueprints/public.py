"""Public pages: the network directory, merchant e-cards and joining (placeholder)."""

from flask import Blueprint

bp = Blueprint("public", __name__)


@bp.route("/")
def index():
    return "Neighbourly"

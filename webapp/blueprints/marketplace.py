"""Plugin marketplace (placeholder)."""

from flask import Blueprint

bp = Blueprint("marketplace", __name__, url_prefix="/business")


@bp.route("/<merchant_slug>/marketplace")
def index(merchant_slug):
    return "marketplace"

"""The till (placeholder)."""

from flask import Blueprint

bp = Blueprint("cashier", __name__, url_prefix="/business")


@bp.route("/<merchant_slug>/till")
def till(merchant_slug):
    return "till"

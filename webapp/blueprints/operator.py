"""Network operator pages (placeholder)."""

from flask import Blueprint

bp = Blueprint("operator", __name__, url_prefix="/operator")


@bp.route("/<network_slug>/")
def index(network_slug):
    return "operator"

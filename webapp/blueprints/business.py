"""Merchant staff pages (placeholder)."""

from flask import Blueprint

bp = Blueprint("business", __name__, url_prefix="/business")


@bp.route("/")
def home():
    return "business"


@bp.route("/<merchant_slug>/dashboard")
def dashboard(merchant_slug):
    return "dashboard"


@bp.route("/<merchant_slug>/customers")
def customers(merchant_slug):
    return "customers"


@bp.route("/<merchant_slug>/settings")
def settings(merchant_slug):
    return "settings"


@bp.route("/<merchant_slug>/staff")
def staff(merchant_slug):
    return "staff"

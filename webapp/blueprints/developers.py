"""The API reference page: the OpenAPI document rendered by Swagger UI (served from node_modules)."""

from __future__ import annotations

from flask import Blueprint

from webapp.web import render

bp = Blueprint("developers", __name__, url_prefix="/developers")


@bp.route("/api")
def api_reference():
    return render("public/api_reference.html")

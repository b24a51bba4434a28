"""Front-end libraries installed from the npm registry, served from node_modules (never copied)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, current_app, send_from_directory

bp = Blueprint("assets", __name__)

# Only these files of installed npm packages are served.
VENDOR_FILES = {
    "htmx.min.js": ("htmx.org", "dist/htmx.min.js"),
    "swagger-ui-bundle.js": ("swagger-ui-dist", "swagger-ui-bundle.js"),
    "swagger-ui.css": ("swagger-ui-dist", "swagger-ui.css"),
}


@bp.route("/vendor/<name>")
def vendor(name: str):
    if name not in VENDOR_FILES:
        abort(404)
    package, relative = VENDOR_FILES[name]
    root = Path(current_app.config.get("NODE_MODULES") or Path(current_app.root_path).parent / "node_modules")
    path = root / package / relative
    if not path.is_file():
        abort(404)
    return send_from_directory(path.parent, path.name, max_age=86400)

"""Error pages: domain errors become clear messages with 4xx codes, never a 500."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from flask import Flask, g, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from webapp.blueprints import api
from webapp.errors import NeighbourlyError, is_database_unavailable
from webapp.web import is_fragment_request

log = logging.getLogger(__name__)
View = TypeVar("View", bound=Callable)

def when_database_unavailable(message: Callable[[], str]) -> Callable[[View], View]:
    """Give a view its own 503 message for a database outage (the till says the sale was not
    recorded); ``message`` is called at error time, so it is translated for the reader."""

    def mark(view: View) -> View:
        view.database_unavailable_message = message  # type: ignore[attr-defined]
        return view

    return mark


def _page(status: int, title: str, message: str):
    template = "errors/_fragment.html" if is_fragment_request() else "errors/error.html"
    return render_template(template, status=status, title=title, message=message), status


def register(app: Flask) -> None:
    @app.errorhandler(NeighbourlyError)
    def domain_error(error: NeighbourlyError):
        if api.is_api_request():  # under /api/ every error is problem+json, never a page
            return api.domain_problem(error)
        return _page(error.status_code, _("That did not work"), error.message)

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return _page(400, _("Form expired"), _("The form could not be verified. Reload the page and try again."))

    @app.errorhandler(429)
    def too_many(error):
        if api.is_api_request():
            return api.http_problem(429)
        return _page(429, _("Too many attempts"), _("Too many attempts. Wait a minute and try again."))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.code and error.code < 400:
            return error
        if api.is_api_request():
            return api.http_problem(error.code or 500)
        titles = {
            400: _("Bad request"),
            403: _("Not allowed"),
            404: _("Page not found"),
            405: _("Not allowed"),
            413: _("File too large"),
        }
        messages = {
            404: _("There is nothing here. Check the address, or go back to the start page."),
            413: _("The file is too large."),
        }
        return _page(
            error.code or 500,
            titles.get(error.code, error.name),
            messages.get(error.code, error.description or ""),
        )

    def database_unavailable(error: Exception):
        log.error("database unavailable on %s %s: %s", request.method, request.path, error)
        from webapp.extensions import db, login_manager

        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001 - the connection is gone; the pool replaces it
            db.session.close()
        # The page must render without the database: nobody is looked up for the header.
        g._login_user = login_manager.anonymous_user()
        view = app.view_functions.get(request.endpoint or "")
        specific = getattr(view, "database_unavailable_message", None)
        message = specific() if specific else _(
            "The database is not available right now, so nothing was saved. Try again in a moment."
        )
        if api.is_api_request():
            response = api.http_problem(503)
            response.headers["Retry-After"] = "5"
            return response
        response = _page(503, _("Not available right now"), message)
        return response[0], 503, {"Retry-After": "5"}

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        if isinstance(error, HTTPException):
            return http_error(error)
        if is_database_unavailable(error):
            return database_unavailable(error)
        log.exception("unhandled error on %s %s", request.method, request.path)
        if app.testing and app.config.get("PROPAGATE_UNEXPECTED", True):
            raise error
        if api.is_api_request():
            return api.http_problem(500)
        return _page(500, _("Something went wrong"), _("Something went wrong on our side. Nothing was saved; please try again."))

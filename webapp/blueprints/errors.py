"""Error pages: domain errors become clear messages with 4xx codes, never a 500."""

from __future__ import annotations

import logging

from flask import Flask, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from webapp.errors import NeighbourlyError
from webapp.web import is_fragment_request

log = logging.getLogger(__name__)


def _page(status: int, title: str, message: str):
    template = "errors/_fragment.html" if is_fragment_request() else "errors/error.html"
    return render_template(template, status=status, title=title, message=message), status


def register(app: Flask) -> None:
    @app.errorhandler(NeighbourlyError)
    def domain_error(error: NeighbourlyError):
        return _page(error.status_code, _("That did not work"), error.message)

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return _page(400, _("Form expired"), _("The form could not be verified. Reload the page and try again."))

    @app.errorhandler(429)
    def too_many(error):
        return _page(429, _("Too many attempts"), _("Too many attempts. Wait a minute and try again."))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.code and error.code < 400:
            return error
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

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        if isinstance(error, HTTPException):
            return http_error(error)
        log.exception("unhandled error on %s %s", request.method, request.path)
        if app.testing and app.config.get("PROPAGATE_UNEXPECTED", True):
            raise error
        return _page(500, _("Something went wrong"), _("Something went wrong on our side. Nothing was saved; please try again."))

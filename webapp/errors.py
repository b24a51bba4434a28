"""Domain exceptions: services raise these, views turn them into messages and 4xx answers."""

from __future__ import annotations

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import exc as sa_exc


class NeighbourlyError(Exception):
    """Base of every domain error; ``message`` is safe to show to the user."""

    status_code = 400

    def __init__(self, message: str = "", **details: object) -> None:
        super().__init__(message)
        # Without a message, the class's one-line docstring is the message (translated if known).
        self.message = message or gettext(self.__class__.__doc__ or "Request refused.")
        self.details = details


class NotFound(NeighbourlyError):
    """Not found."""

    status_code = 404


class Forbidden(NeighbourlyError):
    """You are not allowed to do that."""

    status_code = 403


class ValidationFailed(NeighbourlyError):
    """The data sent is not valid."""

    status_code = 422


class InvalidPhone(ValidationFailed):
    """This is not a valid phone number."""


class PurchaseDeclined(NeighbourlyError):
    """The purchase was declined."""

    status_code = 422


class InsufficientPoints(PurchaseDeclined):
    """The customer does not have enough points."""


class IdempotencyConflict(NeighbourlyError):
    """This idempotency key was already used for a different request."""

    status_code = 409


class AlreadyRefunded(NeighbourlyError):
    """This purchase has already been refunded."""

    status_code = 409


class RefundRefused(NeighbourlyError):
    """This purchase cannot be refunded."""

    status_code = 409


class Conflict(NeighbourlyError):
    """The request conflicts with the current state."""

    status_code = 409


class RewardUnavailable(Conflict):
    """This reward cannot be given any more."""


# The docstrings above double as default messages; listed here so that extraction finds them.
_DEFAULT_MESSAGES = (
    _l("Request refused."),
    _l("Not found."),
    _l("You are not allowed to do that."),
    _l("The data sent is not valid."),
    _l("The purchase was declined."),
    _l("The customer does not have enough points."),
    _l("This idempotency key was already used for a different request."),
    _l("This purchase has already been refunded."),
    _l("This purchase cannot be refunded."),
    _l("The request conflicts with the current state."),
    _l("This reward cannot be given any more."),
)


# What the database raises when it is down, restarting, unreachable, or cancelled a statement that
# ran too long: the request did nothing, and retrying later will work.
DATABASE_UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)


def is_database_unavailable(error: BaseException) -> bool:
    """Whether ``error`` means "the database cannot be used right now" (answered with a 503)."""
    if isinstance(error, DATABASE_UNAVAILABLE):
        return True
    return isinstance(error, sa_exc.DBAPIError) and bool(error.connection_invalidated)

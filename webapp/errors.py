"""Domain exceptions: services raise these, views turn them into messages and 4xx answers."""

from __future__ import annotations


class NeighbourlyError(Exception):
    """Base of every domain error; ``message`` is safe to show to the user."""

    status_code = 400

    def __init__(self, message: str = "", **details: object) -> None:
        super().__init__(message)
        self.message = message or self.__class__.__doc__ or "Request refused."
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

"""Small frozen dataclasses that hook implementations return to the core (never bare dicts)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup


@dataclass(frozen=True)
class NavItem:
    """A link in the merchant's or customer's navigation bar."""

    label: str
    endpoint: str
    order: int = 100
    url_params: dict = field(default_factory=dict)
    area: str = "merchant"  # "merchant" (staff pages) or "customer"
    icon: str = ""
    owner_only: bool = False


@dataclass(frozen=True)
class DashboardPanel:
    """A panel on the merchant dashboard; ``html`` is already rendered, or ``lazy_url`` loads it."""

    key: str
    title: str
    order: int = 100
    html: Markup = Markup("")
    lazy_url: str | None = None
    wide: bool = False


@dataclass(frozen=True)
class ReceiptLine:
    """One line on the cashier's receipt: what was paid, earned or received."""

    label: str
    value: str
    order: int = 100
    source: str = "core"
    emphasis: bool = False


@dataclass(frozen=True)
class CheckoutLine:
    """Something a plugin offers at the till for an identified customer (certificate, status)."""

    label: str
    detail: str = ""
    order: int = 100
    source: str = "core"


@dataclass(frozen=True)
class PurchaseAdjustment:
    """A reduction of the bill applied inside the purchase transaction (certificate, discount).

    ``amount`` is in minor units and is subtracted from what the customer pays (the core caps it
    at what is left of the bill). ``data`` is the payload of the plugin that made it (which
    certificate, at which balance): the core never reads it and hands the sale's adjustments
    back to ``neighbourly_purchase_recorded``, so a plugin finishes its work there without
    keeping state of its own between the two hooks.
    """

    source: str
    label: str
    amount: int
    kind: str = "discount"  # "discount" or "certificate"
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EarnRate:
    """A cashback rate in basis points (500 = 5 %) that replaces the merchant's base rate."""

    basis_points: int
    source: str
    label: str = ""


@dataclass(frozen=True)
class CustomerDataSection:
    """A section of a customer's data export contributed by one plugin."""

    source: str
    data: object


@dataclass(frozen=True)
class CustomerFact:
    """A formatted fact about a customer, keyed by a well-known name ("status", "certificate")."""

    key: str
    value: str
    source: str
    label: str = ""
    order: int = 100


@dataclass(frozen=True)
class RewardOption:
    """A reward other than points that a merchant can give (a neighbour's certificate).

    ``key`` is ``"<plugin>:<id>"``, stable while the option exists; other plugins store it (a
    survey's reward) and hand it back to ``neighbourly_grant_reward`` to give the reward.
    ``available`` is false while it cannot be given (caps used up, partnership paused).
    """

    key: str
    label: str
    source: str
    available: bool = True
    note: str = ""


@dataclass(frozen=True)
class GrantedReward:
    """What ``neighbourly_grant_reward`` gave: a label for the customer and a reference."""

    key: str
    label: str
    object_ref: str


@dataclass(frozen=True)
class EventType:
    """A domain event that webhooks can subscribe to (``purchase.recorded``, ``level.changed``).

    ``name`` is ``<entity>.<verb>``; ``label`` says in the owner's language when it happens.
    The event itself is announced with ``webapp.outbox.record_event`` inside its transaction.
    """

    name: str
    label: str
    source: str = "core"
    order: int = 100


@dataclass(frozen=True)
class WalletSummaryLine:
    """One short line on a card's compact summary in the wallet ("Gold · 7% cashback").

    ``text`` is plain text (escaped when shown); ``url``, when given, makes the line a link
    (a certificate, a survey to answer). ``tone`` is ``""``, ``"notice"`` (something waiting for
    the customer) or ``"warning"`` (something cancelled or about to expire).
    """

    key: str
    text: str
    source: str
    order: int = 100
    url: str | None = None
    tone: str = ""


@dataclass(frozen=True)
class LedgerReason:
    """Why points moved, as data: a reason kind and its parameters (plain JSON values).

    Stored on the ledger row and turned into a sentence when someone reads it, in their
    language, by the renderer registered for ``kind`` (``LedgerReasonKind``). Core kinds are
    bare words (``cashback``); a plugin's kinds start with its name (``surveys.reward``).
    """

    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LedgerReasonKind:
    """How a reader sees one reason kind: ``render(params)`` returns the sentence in the current
    locale (called at display time, inside a request or ``force_locale``). ``example`` is a set
    of parameters the reference test renders in every language."""

    kind: str
    render: Callable[[Mapping[str, Any]], str]
    example: Mapping[str, Any] = field(default_factory=dict)

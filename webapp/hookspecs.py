"""Every hook the core calls, grouped by phase; each docstring is the contract a test enforces."""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("neighbourly")


# --------------------------------------------------------------------------- app setup


@hookspec
def neighbourly_register_blueprints(app):
    """Contribute Flask blueprints to the application.

    Scope: app (called once for every installed plugin, whatever merchants enabled).
    Phase: startup, inside ``create_app`` after the core blueprints.

    :param app: the Flask application being built.
    :returns: a list of ``flask.Blueprint`` objects (or ``None``). Blueprints of merchant-scoped
        pages should use :func:`webapp.plugins.merchant_plugin_blueprint` so that their pages
        answer 404 for merchants that have not enabled the plugin.
    """


@hookspec
def neighbourly_register_periodic_tasks(huey):
    """Register periodic jobs (expiry, reminders, recomputation checks) on the task queue.

    Scope: app.
    Phase: startup, when the app's task queue is built (once per app).

    :param huey: the app's ``huey.Huey`` instance; decorate functions with ``huey.periodic_task``.
        Each job runs inside an application context of that app (``db.session`` is ready).
    :returns: ``None``.
    """


@hookspec
def neighbourly_register_ledger_reasons():
    """Declare how the reason kinds a plugin writes on ledger rows read (``surveys.reward``).

    Ledger rows store a reason kind and its parameters, never a sentence: the sentence is
    rendered when someone reads the history, in their language. Declare every kind the
    plugin posts with, so that rows stay readable even while the plugin is switched off.

    Scope: app.
    Phase: startup (read once per application, the first time a reason is rendered).

    :returns: a list of ``webapp.contracts.LedgerReasonKind`` (or ``None``).
    """


# --------------------------------------------------------------------------- merchant lifecycle


@hookspec
def neighbourly_plugin_enabled(merchant, plugin_name, session):
    """React to a merchant switching a plugin on (create defaults, e.g. five status levels).

    Scope: merchant (only the plugin being enabled is called).
    Phase: inside the transaction that records the switch; raising rolls the switch back.

    :param merchant: the ``Merchant``.
    :param plugin_name: the name of the plugin being enabled.
    :param session: the SQLAlchemy session of the transaction.
    :returns: ``None``, or a sentence for the owner about what switching on did (e.g. "45
        customers placed on their levels from their history"), shown with the confirmation.
    """


@hookspec
def neighbourly_plugin_disabled(merchant, plugin_name, session):
    """React to a merchant switching a plugin off; data must be kept.

    Scope: merchant (only the plugin being disabled is called).
    Phase: inside the transaction that records the switch.

    :param merchant: the ``Merchant``.
    :param plugin_name: the name of the plugin being disabled.
    :param session: the SQLAlchemy session of the transaction.
    :returns: ``None``.
    """


@hookspec
def neighbourly_membership_recorded(merchant, membership, session, referral_code, rejoined):
    """A customer joined a merchant, or re-joined after leaving; add rows that belong with it.

    Scope: merchant (plugins enabled for ``merchant``).
    Phase: inside the joining transaction, after the membership row is flushed; raising rolls
        the joining back.

    :param merchant: the ``Merchant`` joined.
    :param membership: the ``Membership`` (new, or the customer's earlier one opened again).
    :param session: the SQLAlchemy session of the transaction.
    :param referral_code: the referral code the customer arrived with, or ``None``.
    :param rejoined: ``True`` when an earlier membership was opened again (its id, balance and
        history are the ones the customer had): pay what waited for the customer, but do not
        treat them as a new customer (no sign-up bonus, no referral link).
    :returns: ``None``.
    """


# --------------------------------------------------------------------------- purchase transaction


@hookspec
def neighbourly_validate_purchase(merchant, membership, draft):
    """Veto a purchase before anything is written.

    Scope: merchant.
    Phase: validate (no writes; the core's own rules have passed).

    :param merchant: the ``Merchant`` recording the sale.
    :param membership: the customer's ``Membership``.
    :param draft: a ``webapp.services.purchases.PurchaseDraft`` (amount, points, options).
    :returns: ``None`` to allow, or a reason string (shown to the cashier) to decline.
    """


@hookspec
def neighbourly_collect_earn_rates(merchant, membership):
    """Offer a cashback rate that replaces the merchant's base rate (e.g. a status level's).

    Scope: merchant.
    Phase: record (inside the purchase transaction, before the balance changes); also used to
        show the customer what they will earn.

    :param merchant: the ``Merchant``.
    :param membership: the customer's ``Membership``.
    :returns: a ``webapp.contracts.EarnRate`` or ``None``; the highest rate offered wins.
    """


@hookspec
def neighbourly_collect_purchase_adjustments(merchant, membership, draft, session):
    """Reduce the bill inside the purchase transaction (apply a certificate, a discount).

    Scope: merchant.
    Phase: record (inside the purchase transaction, before the purchase row is inserted); rows
        the plugin writes here roll back with the purchase.

    :param merchant: the ``Merchant``.
    :param membership: the customer's ``Membership``.
    :param draft: the ``PurchaseDraft``; ``draft.options`` carries the cashier's choices.
    :param session: the SQLAlchemy session of the transaction.
    :returns: a list of ``webapp.contracts.PurchaseAdjustment`` (or ``None``).
    """


@hookspec
def neighbourly_purchase_recorded(merchant, purchase, membership, session, adjustments):
    """Write plugin rows that must be atomic with a purchase (status change, certificate issued).

    Scope: merchant.
    Phase: record (inside the purchase transaction, after the purchase and ledger rows are
        flushed); an exception rolls the whole purchase back and the cashier sees the message.

    :param merchant: the ``Merchant``.
    :param purchase: the flushed ``Purchase``.
    :param membership: the customer's ``Membership``.
    :param session: the SQLAlchemy session of the transaction.
    :param adjustments: the ``webapp.contracts.PurchaseAdjustment`` objects this sale applied
        (as ``neighbourly_collect_purchase_adjustments`` returned them, capped at the bill),
        each with its plugin's ``data``: a plugin finds its own by ``source``.
    :returns: ``None``.
    """


@hookspec
def neighbourly_purchase_refunded(merchant, purchase, session):
    """Undo plugin effects of a purchase being refunded (void certificates it issued, ...).

    Scope: merchant.
    Phase: inside the refund transaction; the core has already reversed every ledger entry that
        names the purchase, so plugins only undo their own rows. Raising rolls the refund back.

    :param merchant: the ``Merchant``.
    :param purchase: the ``Purchase`` being refunded.
    :param session: the SQLAlchemy session of the transaction.
    :returns: ``None``.
    """


@hookspec
def neighbourly_event_recorded(merchant, event, data, session):
    """Learn of a domain event inside its transaction (webhooks, integrations).

    Events: ``purchase.recorded``, ``purchase.refunded``, ``membership.created``, and those that
    plugins announce with ``webapp.outbox.record_event`` (e.g. ``certificate.redeemed``). An
    implementation that must reach the outside writes outbox rows (``webapp.outbox.add``), so the
    delivery happens exactly when the event commits.

    Scope: merchant.
    Phase: inside the transaction that records the event; no commit, no network calls.

    :param merchant: the ``Merchant`` the event belongs to.
    :param event: the event name, ``<entity>.<verb>``.
    :param data: the event's plain JSON-ready data (ids, minor units, UTC ISO 8601 times).
    :param session: the SQLAlchemy session of the transaction.
    :returns: ``None``.
    """


# --------------------------------------------------------------------------- rewards


@hookspec
def neighbourly_collect_reward_options(merchant, session):
    """Rewards other than points that ``merchant`` can give a customer (a partner's certificate).

    Lets one plugin offer what another gives away (a survey paid with a neighbour's certificate)
    without importing it.

    Scope: merchant.
    Phase: page rendering or inside a transaction (no writes).

    :param merchant: the ``Merchant`` that would give the reward.
    :param session: the SQLAlchemy session to read with.
    :returns: a list of ``webapp.contracts.RewardOption`` (or ``None``).
    """


@hookspec(firstresult=True)
def neighbourly_grant_reward(merchant, user, key, reason, session):
    """Give a customer a reward named by a ``RewardOption.key`` (issue the certificate).

    A command, not a notification: the caller asks for the reward and the plugin that owns
    ``key`` (its prefix) gives it; every other one returns ``None``. Call it through
    ``hooks_for(merchant)``, which also reaches implementations of the deprecated name
    ``neighbourly_reward_recorded``.

    Scope: merchant.
    Phase: inside the caller's transaction (the one that records why the reward is due, e.g. a
        completed survey), without committing; raise ``webapp.errors.RewardUnavailable`` when it
        cannot be given (caps used up, partnership ended), after undoing any row written, so
        the caller can roll back or carry on.

    :param merchant: the ``Merchant`` giving the reward.
    :param user: the ``User`` receiving it.
    :param key: the ``RewardOption.key`` chosen earlier.
    :param reason: a short text for the customer and the books ("Survey: How did we do?").
    :param session: the SQLAlchemy session of the transaction.
    :returns: a ``webapp.contracts.GrantedReward``, or ``None`` when the key is not this plugin's.
    """


@hookspec(
    firstresult=True,
    warn_on_impl=DeprecationWarning(
        "neighbourly_reward_recorded is deprecated: implement neighbourly_grant_reward instead"
    ),
)
def neighbourly_reward_recorded(merchant, user, key, reason, session):
    """Deprecated name of ``neighbourly_grant_reward`` (it gives a reward; nothing was recorded).

    Implementations are still called, after those of the new name when none of them gave the
    reward; registering one warns with a ``DeprecationWarning``. Never call this name: calling
    ``neighbourly_grant_reward`` reaches both.

    Scope: merchant.
    Phase: inside the caller's transaction, like ``neighbourly_grant_reward``.

    :param merchant: the ``Merchant`` giving the reward.
    :param user: the ``User`` receiving it.
    :param key: the ``RewardOption.key`` chosen earlier.
    :param reason: a short text for the customer and the books.
    :param session: the SQLAlchemy session of the transaction.
    :returns: a ``webapp.contracts.GrantedReward``, or ``None`` when the key is not this plugin's.
    """


# --------------------------------------------------------------------------- after commit


@hookspec
def neighbourly_purchase_committed(merchant, purchase):
    """Do follow-up work once a purchase is committed (letters, invitations, notifications).

    Scope: merchant.
    Phase: after commit, through the outbox: the sale writes one outbox row per plugin in its
        own transaction; the worker runs each plugin isolated and commits its work together with
        the row's completion, so database effects happen once. A failure is logged and retried
        with backoff and never undoes the purchase. E-mails sent with ``webapp.mail.send_email``
        here go out only if this work commits.

    :param merchant: the ``Merchant``.
    :param purchase: the committed ``Purchase`` (reloaded in the worker's session).
    :returns: ``None``.
    """


@hookspec
def neighbourly_membership_committed(merchant, membership):
    """Do follow-up work once a customer has joined (welcome e-mail, referral notice).

    Scope: merchant.
    Phase: after commit, through the task queue; isolated and retried like
        ``neighbourly_purchase_committed``. Must be idempotent.

    :param merchant: the ``Merchant``.
    :param membership: the committed ``Membership``.
    :returns: ``None``.
    """


@hookspec
def neighbourly_customer_erased(user, session):
    """Remove a plugin's personal data of a customer who asked to be erased.

    Scope: app (every installed plugin, whatever is enabled: data must go everywhere).
    Phase: inside the erasure transaction; financial rows stay under the pseudonymous id.

    :param user: the ``User`` being erased.
    :param session: the SQLAlchemy session of the transaction.
    :returns: ``None``.
    """


# --------------------------------------------------------------------------- demo


@hookspec
def neighbourly_demo_content(merchant, neighbours, session):
    """Add sample rows to the demo street so the plugin's pages show something (``flask demo``).

    Scope: merchant (only the plugin just switched on for ``merchant`` is called).
    Phase: demo loading, after the plugin was switched on for every demo merchant that gets it;
        runs in the owner's language and may commit. Must be idempotent: the demo can be loaded
        again and must not grow.

    :param merchant: the demo ``Merchant``.
    :param neighbours: the other demo merchants with the plugin switched on, in a stable order.
    :param session: the SQLAlchemy session.
    :returns: ``None``.
    """


# --------------------------------------------------------------------------- UI contributions


@hookspec
def neighbourly_collect_nav_items(merchant, user):
    """Add links to the merchant's staff navigation.

    Scope: merchant.
    Phase: page rendering.

    :param merchant: the ``Merchant`` whose pages are shown.
    :param user: the signed-in ``User``.
    :returns: a list of ``webapp.contracts.NavItem``; ordered by ``order``.
    """


@hookspec
def neighbourly_collect_dashboard_panels(merchant):
    """Add panels to the merchant dashboard.

    Scope: merchant.
    Phase: page rendering.

    :param merchant: the ``Merchant``.
    :returns: a list of ``webapp.contracts.DashboardPanel``; ordered by ``order``.
    """


@hookspec
def neighbourly_collect_receipt_lines(merchant, purchase):
    """Add lines to the receipt the cashier sees after confirming a purchase.

    Scope: merchant.
    Phase: page rendering (after commit, also when a retried key replays the receipt).

    :param merchant: the ``Merchant``.
    :param purchase: the ``Purchase``.
    :returns: a list of ``webapp.contracts.ReceiptLine``; ordered by ``order``.
    """


@hookspec
def neighbourly_collect_checkout_lines(merchant, membership):
    """Show the cashier what a plugin offers once a customer is identified (certificate, status).

    Scope: merchant.
    Phase: page rendering (no writes).

    :param merchant: the ``Merchant``.
    :param membership: the identified customer's ``Membership``.
    :returns: a list of ``webapp.contracts.CheckoutLine``; ordered by ``order``.
    """


@hookspec
def neighbourly_collect_customer_facts(merchant, membership, purchase):
    """Plain facts about a customer that other plugins may show (status level, certificate given).

    Lets one plugin use another's facts (a letter naming the customer's status) without
    importing it. Facts are already formatted for the current locale.

    Scope: merchant.
    Phase: page rendering or after commit (no writes).

    :param merchant: the ``Merchant``.
    :param membership: the customer's ``Membership`` there.
    :param purchase: the ``Purchase`` the facts are about, or ``None`` for the customer in general.
    :returns: a list of ``webapp.contracts.CustomerFact`` (or ``None``).
    """


@hookspec
def neighbourly_collect_customer_data(user):
    """Contribute a plugin's data about a customer to their JSON export.

    Scope: app (every installed plugin: the export must be complete).
    Phase: page rendering (no writes).

    :param user: the ``User`` exporting their data.
    :returns: a ``webapp.contracts.CustomerDataSection`` or ``None``.
    """


@hookspec
def neighbourly_tpl_wallet_card(merchant, membership):
    """HTML for a customer's card in the wallet (status, certificates, referral link ...).

    Scope: merchant.
    Phase: page rendering.

    :param merchant: the ``Merchant`` of the card.
    :param membership: the customer's ``Membership``.
    :returns: ``markupsafe.Markup`` (rendered from an autoescaped template) or ``None``.
    """


@hookspec
def neighbourly_tpl_merchant_page(merchant):
    """HTML for the news/plugins area of a merchant's public e-card.

    Scope: merchant.
    Phase: page rendering.

    :param merchant: the ``Merchant`` shown.
    :returns: ``markupsafe.Markup`` or ``None``.
    """


@hookspec
def neighbourly_tpl_customer_portrait(merchant, membership):
    """HTML panel for the customer portrait a merchant sees.

    Scope: merchant.
    Phase: page rendering.

    :param merchant: the ``Merchant``.
    :param membership: the customer's ``Membership`` at that merchant.
    :returns: ``markupsafe.Markup`` or ``None``.
    """


@hookspec
def neighbourly_tpl_receipt(merchant, purchase):
    """Extra HTML under the receipt lines (a "rate this visit" link, a certificate card).

    Scope: merchant.
    Phase: page rendering.

    :param merchant: the ``Merchant``.
    :param purchase: the ``Purchase``.
    :returns: ``markupsafe.Markup`` or ``None``.
    """


@hookspec
def neighbourly_tpl_checkout(merchant, membership):
    """Form fields inside the till's purchase form (e.g. a certificate code to apply).

    Fields must be named ``opt_<name>``; the till passes them to the purchase as
    ``draft.options[name]``, where validate and record hooks read them.

    Scope: merchant.
    Phase: page rendering (no writes).

    :param merchant: the ``Merchant`` at whose till the form is shown.
    :param membership: the identified customer's ``Membership``.
    :returns: ``markupsafe.Markup`` or ``None``.
    """


@hookspec
def neighbourly_tpl_directory(network):
    """HTML for a section of a network's public directory (e.g. the open group deals of its shops).

    Scope: app (every installed plugin is called; an implementation shows only what belongs to
        merchants of ``network`` that have it enabled and are active).
    Phase: page rendering (the full directory page, not its htmx search results).

    :param network: the ``Network`` whose directory is shown.
    :returns: ``markupsafe.Markup`` (rendered from an autoescaped template) or ``None``.
    """


@hookspec
def neighbourly_collect_share_params(merchant, membership):
    """Query parameters to add to a link a customer shares with friends (e.g. a referral code).

    Lets a plugin that shares links (a group deal) carry what another plugin needs to credit
    the customer (the referrals plugin's code, which the core's joining passes on as
    ``referral_code``) without importing it.

    Scope: merchant.
    Phase: page rendering; may create the plugin's own per-member row on first need
        (idempotently) and commit it.

    :param merchant: the ``Merchant`` whose page is shared.
    :param membership: the sharing customer's ``Membership``.
    :returns: a ``dict`` of parameter names to string values (or ``None``).
    """


# --------------------------------------------------------------------------- events


@hookspec
def neighbourly_collect_event_types(merchant):
    """Declare the events a plugin announces, so owners can subscribe webhooks to them.

    A plugin that declares ``certificate.redeemed`` here announces it with
    ``webapp.outbox.record_event(session, merchant, "certificate.redeemed", data)`` inside the
    transaction that makes it happen; every endpoint of the merchant subscribed to it then gets a
    delivery committed with that transaction (see ``neighbourly_event_recorded``). ``data`` is
    plain JSON-ready data: ids, amounts in minor units, UTC ISO 8601 times, no personal details.

    Scope: merchant (plugins enabled for ``merchant``; the core declares its own events).
    Phase: page rendering and validation of the owner's webhook form (no writes).

    :param merchant: the ``Merchant`` whose owner is choosing events.
    :returns: a list of ``webapp.contracts.EventType`` (or ``None``).
    """


# --------------------------------------------------------------------------- POS API


@hookspec
def neighbourly_register_api(app):
    """Contribute endpoints to the POS API under ``/api/v1/``.

    Scope: app (called once for every installed plugin, whatever merchants enabled).
    Phase: startup, inside ``create_app`` after the core's API.

    Make each blueprint with :func:`webapp.api.plugin_api_blueprint`: its calls need an API key
    (the merchant is ``g.merchant``), count against the key's rate limit, and answer 404 when the
    key's merchant has not enabled the plugin. Describe each view with
    ``webapp.api.spec.validate(..., skip_validation=True)`` so that it appears in
    ``/api/v1/openapi.json``; POSTs need ``webapp.api.idempotency_key()`` (or the
    ``webapp.api.idempotent`` decorator), errors are raised as ``NeighbourlyError`` subclasses.

    :param app: the Flask application being built.
    :returns: a list of ``flask.Blueprint`` objects (or ``None``).
    """


# --------------------------------------------------------------------------- UI contributions (wallet summary)


@hookspec
def neighbourly_collect_wallet_summary(merchant, membership):
    """Add one-line facts to a card's compact summary in the customer's wallet.

    The wallet lists every card as a short summary (balance, then these lines) and links to the
    card's page, where ``neighbourly_tpl_wallet_card`` shows the full panels. Keep each line to a
    few words: a phone shows every card of the customer on about two screens. Return at most one
    or two lines; the most useful first (``order``: status 20, expiry 30, certificates 40,
    surveys 50, news 60, referrals 70).

    Scope: merchant.
    Phase: page rendering (no writes).

    :param merchant: the ``Merchant`` of the card.
    :param membership: the customer's ``Membership``.
    :returns: a list of ``webapp.contracts.WalletSummaryLine``; ordered by ``order``.
    """

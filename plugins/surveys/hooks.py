"""The surveys plugin's hook implementations: pages, invitations, rewards on joining, UI slots."""

from __future__ import annotations

import logging

from flask import url_for
from flask_babel import gettext as _

from plugins.surveys import models as _models  # noqa: F401  (registers the surveys_ tables)
from plugins.surveys import services
from plugins.surveys.views import bp, customer_bp
from webapp.plugin_api import (
    MARKETING,
    CustomerDataSection,
    CustomerFact,
    DashboardPanel,
    NavItem,
    User,
    WalletSummaryLine,
    db,
    has_consent,
    hookimpl,
    in_recipient_language,
    public_url,
    render_fragment,
    send_email,
)

log = logging.getLogger(__name__)


_html = render_fragment


@hookimpl
def neighbourly_register_blueprints(app):
    return [bp, customer_bp]


@hookimpl
def neighbourly_collect_nav_items(merchant, user):
    return [
        NavItem(
            _("Surveys"), "surveys.index", order=65, url_params={"merchant_slug": merchant.slug},
            icon="survey",
        )
    ]


@hookimpl
def neighbourly_membership_recorded(merchant, membership, session, referral_code, rejoined):
    # Rewards for public surveys answered before (re-)joining are paid inside that transaction.
    services.pay_waiting_rewards(session, merchant, membership)


@hookimpl
def neighbourly_purchase_committed(merchant, purchase):
    invited = services.invite_after_purchase(db.session, merchant, purchase)
    if not invited:
        return
    membership = purchase.membership
    user = db.session.get(User, membership.user_id)
    if user is None or not user.email or not has_consent(db.session, user.id, merchant.id, MARKETING):
        return
    with in_recipient_language(user, merchant.network):
        _invite_by_email(merchant, user, invited)


def _invite_by_email(merchant, user, invited) -> None:
    for survey in invited:
        reward = services.reward_words(survey.reward_points, survey.reward_label)
        # Built apart: the message extractor does not see a gettext call nested in another's arguments.
        reward_sentence = _("Your reward for the answers: %(reward)s.", reward=reward) if reward else ""
        body = _(
            "Hello %(name)s,\n\nThank you for your visit to %(merchant)s. Would you answer a short "
            "survey, \"%(title)s\"?%(reward)s\n\nAnswer here (you can stop and finish later):\n%(link)s",
            name=user.first_name, merchant=merchant.name, title=survey.title, link=public_url("surveys_public.answer", token=survey.token),
            reward=(" " + reward_sentence) if reward_sentence else "",
        )
        send_email(user.email, _("%(merchant)s asks for your opinion", merchant=merchant.name), body,
                   sender_name=merchant.name)
        services.mark_emailed(db.session, survey, user.id)


@hookimpl
def neighbourly_tpl_receipt(merchant, purchase):
    if purchase.refunded_at is not None:
        return None  # a refunded visit is not rated
    link = public_url("surveys_public.rate", purchase_id=purchase.id)
    return _html("surveys/_receipt.html", merchant=merchant, purchase=purchase, link=link)


@hookimpl
def neighbourly_tpl_wallet_card(merchant, membership):
    surveys = services.open_surveys_for(db.session, merchant, membership)
    purchase = services.unrated_purchase(db.session, membership)
    complaints = services.customer_complaints(db.session, membership)
    answered = services.has_answered(db.session, merchant, membership.user_id)
    if not surveys and purchase is None and not complaints and not answered:
        return None
    return _html("surveys/_wallet_card.html", merchant=merchant, surveys=surveys, purchase=purchase,
                 complaints=complaints, answered=answered)


@hookimpl
def neighbourly_tpl_customer_portrait(merchant, membership):
    answered = services.customer_answers(db.session, merchant, membership.user_id)
    if not answered:
        return None
    return _html("surveys/_portrait.html", merchant=merchant, answered=answered)


@hookimpl
def neighbourly_collect_dashboard_panels(merchant):
    open_complaints, running = services.panel_counts(db.session, merchant)
    html = _html("surveys/_panel.html", merchant=merchant, open_complaints=open_complaints, running=running)
    return [DashboardPanel(key="surveys", title=_("Surveys and ratings"), order=65, html=html)]


@hookimpl
def neighbourly_collect_customer_facts(merchant, membership, purchase):
    rating = services.latest_rating(db.session, membership, purchase)
    if rating is None:
        return None
    return [CustomerFact(key="visit_rating", value=f"{rating.score}/5", source="surveys",
                         label=_("Visit rating"), order=80)]


@hookimpl
def neighbourly_collect_customer_data(user):
    return CustomerDataSection(source="surveys", data=services.customer_data(db.session, user.id))


@hookimpl
def neighbourly_customer_erased(user, session):
    services.erase_customer(session, user.id)


@hookimpl
def neighbourly_demo_content(merchant, neighbours, session):
    from plugins.surveys.demo import add_demo_surveys

    add_demo_surveys(session, merchant, neighbours)


@hookimpl
def neighbourly_collect_wallet_summary(merchant, membership):
    # What waits for the customer, most pressing first; two lines at most.
    lines = []
    # The answered complaint and the visit to rate: one statement of ids (two loading rows before).
    answered_id, purchase_id = services.wallet_waiting(db.session, membership)
    if answered_id is not None:
        lines.append(WalletSummaryLine(key="complaint", text=_("The business answered your complaint"),
                                       source="surveys", order=45, tone="notice",
                                       url=url_for("surveys_public.complaint", complaint_id=answered_id)))
    if purchase_id is not None:
        lines.append(WalletSummaryLine(key="rate", text=_("Rate this visit"), source="surveys", order=50,
                                       url=url_for("surveys_public.rate", purchase_id=purchase_id)))
    surveys = services.open_surveys_for(db.session, merchant, membership) if len(lines) < 2 else []
    if surveys:
        lines.append(WalletSummaryLine(key="survey", text=_("Answer “%(title)s”", title=surveys[0].title),
                                       source="surveys", order=51, tone="notice",
                                       url=url_for("surveys_public.answer", token=surveys[0].token)))
    return lines[:2]


@hookimpl
def neighbourly_register_ledger_reasons():
    return list(services.LEDGER_REASONS)

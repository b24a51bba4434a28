"""Ask the merchant in a real browser on phones: a customer types a question on the e-card and picks
the FAQ answer that appears as they type; another asks on their wallet card under a topic that the
owner gave to the cashier, the cashier answers on the staff page, and the customer sees the answer.
axe finds no serious violation on the pages used."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from plugins.concierge import services
from plugins.concierge.models import AskedQuestion, FaqEntry
from tests.browser.street import PHONE, open_shops, sign_in
from tests.browser.test_accessibility import AXE, axe_violations
from tests.conftest import PASSWORD
from webapp.extensions import db
from webapp.models import StaffRole
from webapp.services import accounts, memberships

pytestmark = pytest.mark.browser


def open_bakery(app) -> tuple[str, int]:
    with app.app_context():
        bakery = open_shops([("Corner Bakery", "bakery@example.com")], ("concierge",))[
            "Corner Bakery"
        ]
        cashier = accounts.register_user(db.session, "kasym@example.com", PASSWORD, "Kasym Cashier")
        db.session.add(StaffRole(user_id=cashier.id, merchant_id=bakery.id, role="cashier"))
        db.session.commit()
        services.save_topic(db.session, bakery, "Orders", str(cashier.id))
        services.save_faq(
            db.session,
            bakery,
            "Do you deliver?",
            "Yes, within two kilometres. Details: https://bakery.example/delivery",
            "en",
        )
        services.save_faq(
            db.session, bakery, "When are you open?", "Every day from 9:00 to 21:00.", "en"
        )
        dana_card = None
        for email in ("aliya@example.com", "dana@example.com"):
            person = accounts.register_user(
                db.session, email, PASSWORD, email.split("@")[0].title()
            )
            membership, _ = memberships.join_merchant(
                db.session, person, bakery, consent_given=True, text_version="t"
            )
            dana_card = membership.id
        return bakery.slug, dana_card


def test_faq_answers_while_typing_and_a_question_answered_by_the_cashier(live_app, new_page):
    if not AXE.exists():
        pytest.fail("axe-core is missing: run npm ci")
    slug, dana_card = open_bakery(live_app)
    base = live_app.live_url

    # --- Aliya types on the bakery's e-card; the FAQ answer appears while she types, she picks it.
    aliya = new_page(viewport=PHONE)
    sign_in(aliya, base, "aliya@example.com")
    aliya.goto(f"{base}/m/{slug}")
    box = aliya.get_by_label("Your question")
    box.press_sequentially("Will you be delivering my order", delay=20)
    answer = aliya.locator(".cg-match").filter(has_text="Do you deliver?")
    expect(answer).to_be_visible()
    expect(answer.get_by_role("link", name="https://bakery.example/delivery")).to_have_attribute(
        "rel", "nofollow noopener noreferrer"
    )
    assert aliya.locator(".cg-match").filter(has_text="When are you open?").count() == 0
    assert not axe_violations(aliya), axe_violations(aliya)
    answer.get_by_role("button", name="This answers my question").click()
    expect(aliya.get_by_text("Glad it helped!")).to_be_visible()
    with live_app.app_context():
        assert (
            db.session.scalar(select(FaqEntry.picks).where(FaqEntry.question == "Do you deliver?"))
            == 1
        )

    # --- Dana asks on her wallet card under "Orders": routed to the cashier.
    dana = new_page(viewport=PHONE)
    sign_in(dana, base, "dana@example.com")
    dana.goto(f"{base}/wallet/cards/{dana_card}")
    dana.get_by_label("Your question").fill("Can I get a birthday cake with a name on Saturday?")
    dana.get_by_label("Topic").select_option(label="Orders")
    dana.get_by_role("button", name="Send question").click()
    expect(dana.get_by_text("Your question is sent.")).to_be_visible()
    with live_app.app_context():
        question = db.session.scalar(select(AskedQuestion))
        cashier_id = db.session.scalar(select(StaffRole.user_id).where(StaffRole.role == "cashier"))
        assert question.assignee_id == cashier_id

    # --- The cashier answers it on the staff page.
    cashier = new_page(viewport=PHONE)
    sign_in(cashier, base, "kasym@example.com")
    cashier.goto(f"{base}/business/{slug}/questions/")
    cashier.get_by_role("link", name="Can I get a birthday cake with a name on Saturday?").click()
    cashier.get_by_label("Message").fill("Yes! Tell us the name by Thursday.")
    assert not axe_violations(cashier), axe_violations(cashier)
    cashier.get_by_role("button", name="Send", exact=True).click()
    expect(cashier.get_by_text("Your answer is sent.")).to_be_visible()

    # --- Dana sees the answer: a line in her wallet, then the thread.
    dana.goto(f"{base}/wallet/")
    dana.get_by_role("link", name="1 new answer to your question").click()
    dana.get_by_role("link", name="Can I get a birthday cake with a name on Saturday?").click()
    expect(dana.get_by_text("Yes! Tell us the name by Thursday.")).to_be_visible()
    assert not axe_violations(dana), axe_violations(dana)

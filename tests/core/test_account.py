"""The account page: profile, password, sessions, consents, data export and erasure."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import ConsentRecord, LedgerEntry, Membership, User, UserSession
from webapp.services import ledger
from webapp.services.purchases import PurchaseDraft, record_purchase

PASSWORD = "correct horse battery"


def consent_history(user_id: int, merchant_id: int, purpose: str) -> list[tuple[int, bool]]:
    return [
        (record.id, record.granted)
        for record in db.session.scalars(
            select(ConsentRecord)
            .where(
                ConsentRecord.user_id == user_id,
                ConsentRecord.merchant_id == merchant_id,
                ConsentRecord.purpose == purpose,
            )
            .order_by(ConsentRecord.id)
        )
    ]


def test_account_page_lists_sections(client, make_user, make_merchant, make_member):
    merchant = make_merchant(name="Salon Aru")
    member = make_member(merchant)
    client.login(member.user)
    page = client.get("/account/").get_data(as_text=True)
    for text in ("Profile", "Password", "Signed-in devices", "Consents", "Salon Aru", "Download my data"):
        assert text in page
    assert "This device" in page


def test_profile_update_and_validation(client, make_user):
    user = make_user()
    other = make_user(phone="+77010000001")
    client.login(user)
    saved = client.post_form("/account/profile", {"name": "Aigerim N", "phone": "+7 701 000 0002", "locale": "ru"})
    assert saved.status_code == 303
    db.session.refresh(user)
    assert (user.name, user.phone, user.locale) == ("Aigerim N", "+77010000002", "ru")

    # She now reads the site in Russian, so the service's errors come back in Russian too.
    taken = client.post_form("/account/profile", {"name": "Aigerim N", "phone": other.phone, "locale": ""})
    assert taken.status_code == 409 and "уже привязан к другому аккаунту" in taken.get_data(as_text=True)
    bad = client.post_form("/account/profile", {"name": "", "phone": "", "locale": ""})
    assert bad.status_code == 422 and "Введите имя" in bad.get_data(as_text=True)
    db.session.refresh(user)
    assert user.phone == "+77010000002" and user.name == "Aigerim N"


def test_password_change_ends_other_sessions(app, client, make_user):
    user = make_user()
    client.login(user)
    other_device = app.test_client()
    other_device.login(user)
    assert other_device.get("/wallet/").status_code == 200

    wrong = client.post_form("/account/password", {
        "current_password": "not my password", "new_password": "a brand new secret",
        "repeat_password": "a brand new secret"})
    assert wrong.status_code == 422
    assert other_device.get("/wallet/").status_code == 200

    changed = client.post_form("/account/password", {
        "current_password": PASSWORD, "new_password": "a brand new secret",
        "repeat_password": "a brand new secret"})
    assert changed.status_code == 303
    # The browser that changed it was signed in afresh; the other one is out.
    assert client.get("/wallet/").status_code == 200
    kicked = other_device.get("/wallet/")
    assert kicked.status_code == 302 and "/auth/login" in kicked.headers["Location"]
    assert db.session.scalar(
        select(func.count(UserSession.id)).where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
    ) == 1
    fresh = app.test_client()
    fresh.login(user, password="a brand new secret")


def test_sign_out_one_session_or_everywhere_else(app, client, make_user):
    user = make_user()
    stranger = make_user()
    client.login(user)
    phone, tablet = app.test_client(), app.test_client()
    phone.login(user)
    tablet.login(user)
    strangers_device = app.test_client()
    strangers_device.login(stranger)
    rows = db.session.scalars(
        select(UserSession).where(UserSession.user_id == user.id).order_by(UserSession.id)
    ).all()
    phone_row = rows[1]
    strangers_row = db.session.scalar(select(UserSession).where(UserSession.user_id == stranger.id))

    assert client.post_form(f"/account/sessions/{strangers_row.id}/revoke").status_code == 404
    assert strangers_device.get("/wallet/").status_code == 200

    assert client.post_form(f"/account/sessions/{phone_row.id}/revoke").status_code == 303
    assert phone.get("/wallet/").status_code == 302
    assert tablet.get("/wallet/").status_code == 200

    assert client.post_form("/account/sessions/revoke-others").status_code == 303
    assert tablet.get("/wallet/").status_code == 302
    assert client.get("/wallet/").status_code == 200

    # Signing out the session of this very browser signs it out.
    own = db.session.scalar(
        select(UserSession).where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
    )
    signed_out = client.post_form(f"/account/sessions/{own.id}/revoke")
    assert signed_out.status_code == 303 and "/auth/login" in signed_out.headers["Location"]
    assert client.get("/wallet/").status_code == 302


def test_withdrawing_consent_appends_a_record_and_hides_the_card(app, client, make_user, make_merchant, make_member):
    merchant = make_merchant(name="Flower Shop")
    member = make_member(merchant, points=300)
    user = member.user
    client.login(user)
    assert f'id="card-{member.id}"' in client.get("/wallet/").get_data(as_text=True)
    before = consent_history(user.id, merchant.id, "data_processing")
    assert [granted for _id, granted in before] == [True]

    response = client.post_form(f"/account/consents/{merchant.id}", {"purpose": "data_processing", "action": "withdraw"})
    assert response.status_code == 303
    after = consent_history(user.id, merchant.id, "data_processing")
    assert after[0] == before[0]  # the original grant is untouched
    assert [granted for _id, granted in after] == [True, False]
    record = db.session.get(ConsentRecord, after[1][0])
    assert record.text_version == app.config["CONSENT_TEXT_VERSION"]
    assert f'id="card-{member.id}"' not in client.get("/wallet/").get_data(as_text=True)
    db.session.refresh(member)
    assert member.left_at is not None and member.balance == 300

    account = client.get("/account/").get_data(as_text=True)
    assert "Withdrawn" in account and "Agree and reopen the card" in account

    # Granting again is the same single click and re-opens the card with its points.
    client.post_form(f"/account/consents/{merchant.id}", {"purpose": "data_processing", "action": "grant"})
    assert [g for _id, g in consent_history(user.id, merchant.id, "data_processing")] == [True, False, True]
    assert f'id="card-{member.id}"' in client.get("/wallet/").get_data(as_text=True)


def test_marketing_consent_grant_and_withdraw(client, make_user, make_merchant, make_member):
    merchant = make_merchant(name="News Cafe")
    member = make_member(merchant)
    user = member.user
    client.login(user)
    page = client.get("/account/").get_data(as_text=True)
    assert "data-confirm" in page  # withdrawing asks once, in the browser

    client.post_form(f"/account/consents/{merchant.id}", {"purpose": "marketing", "action": "grant"})
    assert consent_history(user.id, merchant.id, "marketing")[-1][1] is True
    # Withdrawing data processing withdraws marketing with it: no letters to a closed card.
    client.post_form(f"/account/consents/{merchant.id}", {"purpose": "data_processing", "action": "withdraw"})
    assert [g for _id, g in consent_history(user.id, merchant.id, "marketing")] == [True, False]
    refused = client.post_form(f"/account/consents/{merchant.id}", {"purpose": "marketing", "action": "grant"})
    assert refused.status_code == 303
    assert [g for _id, g in consent_history(user.id, merchant.id, "marketing")] == [True, False]


def test_consent_for_an_unrelated_merchant_is_missing(client, make_user, make_merchant, make_member):
    mine = make_merchant()
    other = make_merchant()
    member = make_member(mine)
    client.login(member.user)
    response = client.post_form(f"/account/consents/{other.id}", {"purpose": "data_processing", "action": "grant"})
    assert response.status_code == 404
    assert db.session.scalar(select(func.count(Membership.id)).where(Membership.merchant_id == other.id)) == 0
    assert client.post_form(f"/account/consents/{mine.id}", {"purpose": "nonsense", "action": "grant"}).status_code == 400


def _member_with_purchase(make_merchant, make_member):
    merchant = make_merchant(name="Crumb Bakery", cashback_bp=1000)
    member = make_member(merchant, points=800)
    record_purchase(
        db.session, merchant, member,
        PurchaseDraft(membership_id=member.id, amount=25000, points_to_use=400, idempotency_key="acc-1"),
    )
    db.session.refresh(member)
    return merchant, member


def test_export_contains_everything_but_secrets(client, make_merchant, make_member):
    merchant, member = _member_with_purchase(make_merchant, make_member)
    user = member.user
    client.login(user)
    response = client.get("/account/export")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    raw = response.get_data(as_text=True)
    data = json.loads(raw)
    assert data["profile"]["email"] == user.email
    assert [p["amount_minor"] for p in data["purchases"]] == [25000]
    assert data["purchases"][0]["points_used"] == 400
    kinds = sorted(entry["kind"] for entry in data["ledger_entries"])
    assert kinds == ["adjust", "earn", "redeem"]
    assert sum(entry["points"] for entry in data["ledger_entries"]) == member.balance
    assert data["memberships"][0]["points_balance"] == member.balance
    assert data["consents"][0]["granted"] is True
    assert data["sessions"] and "token_hash" not in data["sessions"][0]
    assert isinstance(data["plugins"], list)
    assert "$argon2" not in raw and "password_hash" not in raw and "token_hash" not in raw


def test_erasure_needs_the_typed_email(client, make_user):
    user = make_user()
    client.login(user)
    response = client.post_form("/account/erase", {"confirm_email": "someone@else.example"})
    assert response.status_code == 422
    db.session.refresh(user)
    assert user.erased_at is None and client.get("/wallet/").status_code == 200


def test_erasure_removes_personal_data_and_keeps_the_books(app, client, make_merchant, make_member):
    merchant, member = _member_with_purchase(make_merchant, make_member)
    user = member.user
    user.phone = "+77015550101"
    db.session.commit()
    email = user.email
    balance = member.balance
    ledger_total = db.session.scalar(select(func.sum(LedgerEntry.amount)).where(LedgerEntry.merchant_id == merchant.id))
    old_card = user.card_code
    client.login(user)

    response = client.post_form("/account/erase", {"confirm_email": email.upper()})
    assert response.status_code == 303 and response.headers["Location"].endswith("/account/erased")
    assert "Your account is erased" in client.get("/account/erased").get_data(as_text=True)

    db.session.expire_all()
    user = db.session.get(User, user.id)
    assert user.name == "Erased customer"
    assert user.email == f"erased-{user.id}@erased.invalid"
    assert user.phone is None and user.password_hash == "" and user.locale is None
    assert user.erased_at is not None and user.card_code != old_card
    # The books are unchanged and the card row remains under the pseudonymous id.
    member = db.session.get(Membership, member.id)
    assert member.user_id == user.id and member.balance == balance
    assert ledger.ledger_sum(db.session, member.id) == balance
    assert db.session.scalar(
        select(func.sum(LedgerEntry.amount)).where(LedgerEntry.merchant_id == merchant.id)
    ) == ledger_total
    assert consent_history(user.id, merchant.id, "data_processing")[-1][1] is False
    # Signed out here and unable to sign in again.
    assert client.get("/wallet/").status_code == 302
    again = client.post_form("/auth/login", {"email": email, "password": PASSWORD})
    assert again.status_code == 422
    assert db.session.scalar(
        select(func.count(UserSession.id)).where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
    ) == 0


def test_owner_cannot_erase_while_owning_a_business(client, make_merchant):
    merchant = make_merchant()
    owner = merchant.owner
    client.login(owner)
    response = client.post_form("/account/erase", {"confirm_email": owner.email})
    assert response.status_code == 409
    assert "Hand the business over" in response.get_data(as_text=True)
    db.session.refresh(owner)
    assert owner.erased_at is None


def test_the_export_lists_the_items_a_purchase_was_made_of(client, make_merchant, make_member):
    from webapp.services import price_items
    from webapp.services.purchases import priced_lines

    merchant = make_merchant(name="Crumb Bakery")
    member = make_member(merchant)
    price_items.add_items(db.session, merchant, [price_items.ItemRow(None, "Rye loaf", 1_200)], "en")
    db.session.commit()
    rye = price_items.items_of(db.session, merchant)[0]
    lines = priced_lines(db.session, merchant, [(rye.id, 3)])
    record_purchase(db.session, merchant, member, PurchaseDraft(
        membership_id=member.id, amount=3_600, points_to_use=0, idempotency_key="acc-items", lines=lines,
    ))
    client.login(member.user)
    data = json.loads(client.get("/account/export").get_data(as_text=True))
    assert data["purchases"][0]["items"] == [{"name": "Rye loaf", "unit_price_minor": 1_200, "quantity": 3}]

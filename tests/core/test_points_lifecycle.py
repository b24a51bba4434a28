"""The points lifecycle: manual adjustments with an audit trail, the welcome bonus (once per
person), birthday bonuses (once a year, even with two workers), expiry reminders (once each)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.concurrency import race
from webapp.errors import ValidationFailed
from webapp.extensions import db
from webapp.models import (
    BirthdayBonus,
    ExpiryReminder,
    LedgerEntry,
    Membership,
    Merchant,
    OutboxMessage,
    PointsAdjustment,
    User,
)
from webapp.services import accounts, ledger, memberships, points, privacy
from webapp.services.purchases import PurchaseDraft, record_purchase


def _emails_to(address: str) -> list[dict]:
    return [
        message.payload for message in db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "email"))
        if message.payload.get("to") == address
    ]


def _balance(membership_id: int) -> int:
    return db.session.scalar(select(Membership.balance).where(Membership.id == membership_id))


# --------------------------------------------------------------------------- manual adjustment


def test_owner_adds_and_removes_points_with_a_reason_shown_to_the_customer(
    app, client, make_merchant, make_member, make_user,
):
    merchant = make_merchant()
    customer = make_user(name="Aigerim Sadykova")
    member = make_member(merchant, user=customer, points=100)
    client.login(merchant.owner)
    url = f"/business/{merchant.slug}/customers/{member.id}/adjust"
    page = client.get(f"/business/{merchant.slug}/customers/{member.id}").get_data(as_text=True)
    assert 'id="adjust"' in page

    response = client.post_form(url, {"direction": "add", "points": "50", "reason": "Broken cup, sorry", "key": "a1"})
    assert response.status_code == 303
    assert _balance(member.id) == 150
    # A double click repeats the key: nothing moves twice.
    client.post_form(url, {"direction": "add", "points": "50", "reason": "Broken cup, sorry", "key": "a1"})
    assert _balance(member.id) == 150

    refused = client.post_form(url, {"direction": "remove", "points": "151", "reason": "Correction", "key": "a2"})
    assert refused.status_code == 422
    assert "at most 150 can be removed" in refused.get_data(as_text=True)
    assert _balance(member.id) == 150
    missing_reason = client.post_form(url, {"direction": "remove", "points": "10", "reason": "  ", "key": "a3"})
    assert missing_reason.status_code == 422
    assert "Say why the points change" in missing_reason.get_data(as_text=True)
    assert client.post_form(url, {"direction": "remove", "points": "-3", "reason": "x", "key": "a4"}).status_code == 422

    assert client.post_form(url, {"direction": "remove", "points": "150", "reason": "Correction", "key": "a5"}).status_code == 303
    assert _balance(member.id) == 0 == ledger.ledger_sum(db.session, member.id)
    trail = db.session.scalars(
        select(PointsAdjustment).where(PointsAdjustment.membership_id == member.id).order_by(PointsAdjustment.id)
    ).all()
    assert [(row.amount, row.reason, row.created_by_id) for row in trail] == [
        (50, "Broken cup, sorry", merchant.owner.id), (-150, "Correction", merchant.owner.id),
    ]
    portrait = client.get(f"/business/{merchant.slug}/customers/{member.id}").get_data(as_text=True)
    assert "Broken cup, sorry" in portrait and "by Owner" in portrait

    client.login(customer)
    wallet = client.get(f"/wallet/cards/{member.id}").get_data(as_text=True)
    assert "Broken cup, sorry" in wallet and "Correction" in wallet


def test_another_merchants_card_cannot_be_adjusted(app, client, make_merchant, make_member):
    mine, theirs = make_merchant(), make_merchant()
    member = make_member(theirs, points=10)
    client.login(mine.owner)
    response = client.post_form(
        f"/business/{mine.slug}/customers/{member.id}/adjust",
        {"direction": "add", "points": "5", "reason": "x", "key": "k"},
    )
    assert response.status_code == 404
    assert _balance(member.id) == 10


def test_concurrent_removals_never_take_the_balance_below_zero(app, make_merchant, make_member, patient_sqlite):
    merchant = make_merchant()
    member = make_member(merchant, points=100)
    merchant_id, member_id, owner_id = merchant.id, member.id, merchant.owner.id

    def remove(thread: int, number: int):
        return points.adjust_points(
            db.session, db.session.get(Merchant, merchant_id), member_id, -30, "Correction", owner_id,
            f"t{thread}-{number}",
        )

    for _round in range(3):
        db.session.rollback()  # SQLite: this session must not hold the write lock
        outcomes = race(app, 6, remove)
        db.session.expire_all()
        done = [outcome for outcome in outcomes if isinstance(outcome, PointsAdjustment)]
        refused = [outcome for outcome in outcomes if isinstance(outcome, ValidationFailed)]
        assert len(done) + len(refused) == 6, outcomes
        assert _balance(member_id) == ledger.ledger_sum(db.session, member_id) >= 0
        points.adjust_points(db.session, db.session.get(Merchant, merchant_id), member_id,
                             100 - _balance(member_id) or 1, "Top up", owner_id, f"top-{_round}")


def test_a_refund_refused_for_spent_points_links_to_the_adjustment(app, client, make_merchant, make_member):
    merchant = make_merchant(cashback_bp=1000)
    member = make_member(merchant)
    sale = record_purchase(db.session, merchant, member, PurchaseDraft(member.id, 10000, 0, "earn-1")).purchase
    points.adjust_points(db.session, merchant, member.id, -1000, "Spent elsewhere", merchant.owner.id, "spend")
    client.login(merchant.owner)
    response = client.post_form(f"/business/{merchant.slug}/purchases/{sale.id}/refund")
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    link = f"/business/{merchant.slug}/customers/{member.id}#adjust"
    assert "adjust the balance first" in page and f'href="{link}"' in page
    # Following the link and giving the points back makes the refund go through.
    portrait = client.get(link.split("#")[0])
    assert portrait.status_code == 200 and 'id="adjust"' in portrait.get_data(as_text=True)
    client.post_form(f"/business/{merchant.slug}/customers/{member.id}/adjust",
                     {"direction": "add", "points": "1000", "reason": "To refund purchase", "key": "fix"})
    assert client.post_form(f"/business/{merchant.slug}/purchases/{sale.id}/refund").status_code == 303
    assert _balance(member.id) == 0


# --------------------------------------------------------------------------- welcome bonus


def _welcome_entries(membership_id: int) -> int:
    return db.session.scalar(
        select(func.count(LedgerEntry.id)).where(
            LedgerEntry.membership_id == membership_id, LedgerEntry.reason_kind == "welcome"
        )
    )


def test_welcome_bonus_once_per_person_never_on_rejoin_or_a_second_account(app, make_merchant, make_user):
    merchant = make_merchant()
    merchant.welcome_bonus_points = 200
    db.session.commit()
    anna = make_user(email="Anna.K@Example.com", phone="+7 701 111 2233")
    card, joined = memberships.join_merchant(db.session, anna, merchant, consent_given=True, text_version="t")
    assert joined and _balance(card.id) == 200 and _welcome_entries(card.id) == 1

    # Leaving and joining again opens the same card: no second bonus.
    memberships.withdraw_consent(db.session, anna, merchant, memberships.DATA_PROCESSING, "t")
    memberships.join_merchant(db.session, anna, merchant, consent_given=True, text_version="t")
    assert _balance(card.id) == 200 and _welcome_entries(card.id) == 1

    # Anna changes her phone; a new account with her old number gets no bonus.
    accounts.update_profile(db.session, anna, name=anna.name, phone="+7 701 999 0000", locale=None, languages=["en"])
    boris = make_user(email="boris@example.com", phone="+7 (701) 111-22-33")
    second, joined = memberships.join_merchant(db.session, boris, merchant, consent_given=True, text_version="t")
    assert joined and _balance(second.id) == 0

    # Anna erases her account; a new account with her e-mail (other case) gets no bonus either.
    privacy.erase_customer(db.session, db.session.get(User, anna.id))
    again = make_user(email="anna.k@example.com")
    third, _joined = memberships.join_merchant(db.session, again, merchant, consent_given=True, text_version="t")
    assert _balance(third.id) == 0

    # Someone new does get it; and a merchant without a bonus gives none.
    newcomer = make_user(phone="+7 701 555 6677")
    fourth, _joined = memberships.join_merchant(db.session, newcomer, merchant, consent_given=True, text_version="t")
    assert _balance(fourth.id) == 200
    plain = make_merchant()
    fifth, _joined = memberships.join_merchant(db.session, make_user(), plain, consent_given=True, text_version="t")
    assert _balance(fifth.id) == 0


def test_racing_joins_of_one_person_credit_one_welcome_bonus(app, make_merchant, make_user, patient_sqlite):
    merchant = make_merchant()
    merchant.welcome_bonus_points = 75
    db.session.commit()
    merchant_id = merchant.id
    for round_number in range(3):
        user_id = make_user().id

        def join(thread: int, number: int):
            return memberships.join_merchant(
                db.session, db.session.get(User, user_id), db.session.get(Merchant, merchant_id),
                consent_given=True, text_version="t",
            )

        db.session.rollback()
        race(app, 4, join)
        db.session.expire_all()
        card = memberships.find_membership(db.session, user_id, merchant_id)
        assert _balance(card.id) == 75, f"round {round_number}"
        assert _welcome_entries(card.id) == 1


# --------------------------------------------------------------------------- birthdays


def _birthday_customer(make_user, make_member, merchant, day: int, month: int, marketing: bool = False):
    user = make_user()
    points.set_birthday(db.session, user, (day, month, None), True, "t")
    member = make_member(merchant, user=user)
    if marketing:
        memberships.grant_consent(db.session, user, merchant, memberships.MARKETING, "t")
    return user, member


def test_birthday_form_stores_the_day_with_its_own_consent(app, client, make_user):
    user = make_user()
    client.login(user)
    assert client.post_form("/account/birthday", {"birth_day": "30", "birth_month": "2", "birthday_consent": "yes"}).status_code == 422
    assert client.post_form("/account/birthday", {"birth_day": "29", "birth_month": "2"}).status_code == 303
    db.session.refresh(user)
    assert user.birth_day is None  # without the consent nothing is kept
    assert client.post_form(
        "/account/birthday", {"birth_day": "29", "birth_month": "2", "birth_year": "", "birthday_consent": "yes"}
    ).status_code == 303
    db.session.refresh(user)
    assert (user.birth_day, user.birth_month, user.birth_year) == (29, 2, None)
    assert points.birthday_consent(db.session, user.id)
    client.post_form("/account/birthday", {"birth_day": "29", "birth_month": "2"})
    db.session.refresh(user)
    assert user.birth_day is None and not points.birthday_consent(db.session, user.id)


def test_birthday_bonus_once_a_year_with_a_greeting_when_consented(app, make_merchant, make_member, make_user):
    merchant = make_merchant()
    merchant.birthday_bonus_points = 300
    merchant.birthday_bonus_days = 14
    db.session.commit()
    greeted, greeted_card = _birthday_customer(make_user, make_member, merchant, 7, 12, marketing=True)
    quiet, quiet_card = _birthday_customer(make_user, make_member, merchant, 7, 12)
    _other, other_card = _birthday_customer(make_user, make_member, merchant, 8, 12)
    now = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    assert points.run_birthday_bonuses(db.session, now) == 2
    assert points.run_birthday_bonuses(db.session, now + timedelta(hours=5)) == 0
    assert (_balance(greeted_card.id), _balance(quiet_card.id), _balance(other_card.id)) == (300, 300, 0)
    entry = db.session.scalar(select(LedgerEntry).where(LedgerEntry.membership_id == greeted_card.id))
    assert entry.expires_at == now + timedelta(days=14)
    assert len(_emails_to(greeted.email)) == 1 and not _emails_to(quiet.email)
    # The next year, again once.
    assert points.run_birthday_bonuses(db.session, now.replace(year=2027)) == 2
    assert _balance(greeted_card.id) == 600


def test_february_29_birthdays_are_kept_on_the_28th_in_common_years(app, make_merchant, make_member, make_user):
    merchant = make_merchant()
    merchant.birthday_bonus_points = 10
    db.session.commit()
    _user, card = _birthday_customer(make_user, make_member, merchant, 29, 2)
    assert points.run_birthday_bonuses(db.session, datetime(2027, 2, 28, 12, tzinfo=UTC)) == 1
    assert points.run_birthday_bonuses(db.session, datetime(2028, 2, 28, 12, tzinfo=UTC)) == 0
    assert points.run_birthday_bonuses(db.session, datetime(2028, 2, 29, 12, tzinfo=UTC)) == 1
    assert _balance(card.id) == 20


def test_birthday_today_is_the_networks_day(app, make_merchant, make_member, make_user, network):
    network.timezone = "Asia/Almaty"  # UTC+5
    db.session.commit()
    merchant = make_merchant()
    merchant.birthday_bonus_points = 10
    db.session.commit()
    _user, card = _birthday_customer(make_user, make_member, merchant, 8, 12)
    # 20:00 UTC on the 7th is already the 8th in Almaty.
    assert points.run_birthday_bonuses(db.session, datetime(2026, 12, 7, 20, tzinfo=UTC)) == 1
    assert _balance(card.id) == 10


def test_two_workers_running_the_birthday_task_credit_one_bonus(
    app, make_merchant, make_member, make_user, patient_sqlite,
):
    merchant = make_merchant()
    merchant.birthday_bonus_points = 50
    db.session.commit()
    cards = [_birthday_customer(make_user, make_member, merchant, 1, 3, marketing=True)[1].id for _ in range(3)]
    for year in (2027, 2028, 2029):
        moment = datetime(year, 3, 1, 9, tzinfo=UTC)
        db.session.rollback()
        outcomes = race(app, 2, lambda thread, number, moment=moment: points.run_birthday_bonuses(db.session, moment), rounds=2)
        assert not [outcome for outcome in outcomes if isinstance(outcome, Exception)], outcomes
        assert sum(outcomes) == len(cards)
        db.session.expire_all()
        for card_id in cards:
            assert _balance(card_id) == 50 * (year - 2026)
            assert db.session.scalar(select(func.count(BirthdayBonus.id)).where(
                BirthdayBonus.membership_id == card_id, BirthdayBonus.year == year)) == 1


# --------------------------------------------------------------------------- reminders


def test_reminders_go_30_and_7_days_before_once_each(app, make_merchant, make_member, make_user):
    merchant = make_merchant()
    merchant.points_expiry_mode, merchant.points_expiry_months = "earned", 2
    db.session.commit()
    user = make_user(email="reminded@example.com")
    member = make_member(merchant, user=user)
    earned_at = datetime(2026, 1, 10, 12, tzinfo=UTC)
    ledger.post(db.session, [ledger.Posting(member.id, merchant.id, "reward", 80, "Bonus")], moment=earned_at)
    db.session.commit()
    expires = ledger.add_months(earned_at, 2)  # 10 March
    assert points.send_reminders(db.session, expires - timedelta(days=40)) == 0
    assert points.send_reminders(db.session, expires - timedelta(days=30)) == 1
    assert points.send_reminders(db.session, expires - timedelta(days=29)) == 0
    assert points.send_reminders(db.session, expires - timedelta(days=12)) == 0
    assert points.send_reminders(db.session, expires - timedelta(days=7)) == 1
    assert points.send_reminders(db.session, expires - timedelta(days=6)) == 0
    mails = _emails_to("reminded@example.com")
    assert len(mails) == 2 and "80 points" in mails[0]["subject"]
    rows = db.session.execute(select(ExpiryReminder.days_before, ExpiryReminder.points)).all()
    assert sorted(rows) == [(7, 80), (30, 80)]


def test_wallet_and_settings_say_when_points_expire(app, client, make_merchant, make_member, make_user):
    merchant = make_merchant()
    client.login(merchant.owner)
    response = client.post_form(
        f"/business/{merchant.slug}/settings/lifecycle",
        {"welcome_bonus": "0", "birthday_bonus": "0", "birthday_days": "30", "expiry_mode": "earned", "expiry_months": "5"},
    )
    assert response.status_code == 422  # 5 is not among the choices
    response = client.post_form(
        f"/business/{merchant.slug}/settings/lifecycle",
        {"welcome_bonus": "100", "birthday_bonus": "50", "birthday_days": "30", "expiry_mode": "earned", "expiry_months": "6"},
    )
    assert response.status_code == 303
    settings_page = client.get(f"/business/{merchant.slug}/settings").get_data(as_text=True)
    assert "applies to points earned afterwards" in settings_page
    db.session.refresh(merchant)
    assert (merchant.welcome_bonus_points, merchant.points_expiry_mode, merchant.points_expiry_months) == (100, "earned", 6)
    public = client.get(f"/m/{merchant.slug}").get_data(as_text=True)
    assert "A welcome bonus of 100 points" in public and "50 points on your birthday" in public
    assert "Points expire 6 months after they are earned" in public
    customer = make_user()
    member = make_member(merchant, user=customer)
    db.session.refresh(member)
    assert member.balance == 100
    client.login(customer)
    wallet = client.get("/wallet/").get_data(as_text=True)  # the compact card: the next expiry
    assert "100 points expire on" in wallet
    card = client.get(f"/wallet/cards/{member.id}").get_data(as_text=True)  # the card: the policy too
    assert "Points expire 6 months after they are earned" in card and "100 points expire on" in card


@pytest.mark.parametrize("locale", ["ru"])
def test_lifecycle_texts_are_translated(app, locale):
    from flask_babel import force_locale

    from webapp.ledger_reasons import render

    with app.test_request_context(), force_locale(locale):
        assert render("expired", {}) == "Баллы сгорели"
        assert render("welcome", {}) != "Welcome bonus"


def test_dashboard_forecast_shows_the_points_due_each_month(app, client, make_merchant, make_member):
    merchant = make_merchant()
    merchant.points_expiry_mode, merchant.points_expiry_months = "earned", 2
    db.session.commit()
    member = make_member(merchant)
    ledger.post(db.session, [ledger.Posting(member.id, merchant.id, "reward", 120, "Bonus")])
    db.session.commit()
    points.adjust_points(db.session, merchant, member.id, -20, "Correction", merchant.owner.id, "c1")
    forecast = points.expiry_forecast(db.session, merchant)
    assert len(forecast) == 12 and sum(value for _month, value in forecast) == 100
    assert forecast[2][1] == 100 or forecast[1][1] == 100  # two months on, at a month's turn or not
    client.login(merchant.owner)
    dashboard = client.get(f"/business/{merchant.slug}/dashboard").get_data(as_text=True)
    assert f"/business/{merchant.slug}/dashboard/expiry" in dashboard
    panel = client.get(f"/business/{merchant.slug}/dashboard/expiry").get_data(as_text=True)
    assert "100 points expire in the next 12 months" in panel and "<svg" in panel


def test_operators_run_the_jobs_from_the_command_line(app, runner, make_merchant, make_member):
    merchant = make_merchant()
    member = make_member(merchant)
    ledger.post(db.session, [ledger.Posting(member.id, merchant.id, "reward", 30, "Bonus",
                                            expires_at=datetime(2020, 1, 1, tzinfo=UTC))])
    db.session.commit()
    result = runner.invoke(args=["points", "expire"])
    assert result.exit_code == 0 and "30 points expired" in result.output
    assert _balance(member.id) == 0
    result = runner.invoke(args=["points", "birthdays"])
    assert result.exit_code == 0 and "0 birthday bonuses credited" in result.output

"""The demo neighbourhood loads consistent data through the purchase service, and is idempotent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

import neighbourly_demo as demo
from webapp.extensions import db
from webapp.models import (
    ConsentRecord,
    CustomerMonthTotals,
    LedgerEntry,
    Membership,
    Merchant,
    MerchantPhoto,
    MerchantWeeklyStats,
    Network,
    Purchase,
    StaffRole,
    User,
)
from webapp.services import accounts, hours

SMALL = {"customers": 30, "purchases": 200}
FIXED_NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _assert_books_balance() -> None:
    """Every card equals its ledger and its purchases; weekly figures equal the purchase rows."""
    ledger = dict(
        db.session.execute(
            select(LedgerEntry.membership_id, func.sum(LedgerEntry.amount)).group_by(LedgerEntry.membership_id)
        ).all()
    )
    sales = {
        row.membership_id: row
        for row in db.session.execute(
            select(
                Purchase.membership_id,
                func.count(Purchase.id).label("visits"),
                func.sum(Purchase.amount).label("spent"),
            ).group_by(Purchase.membership_id)
        )
    }
    cards = db.session.scalars(select(Membership)).all()
    assert cards
    for card in cards:
        assert card.balance == ledger.get(card.id, 0), card.id
        assert card.visits == (sales[card.id].visits if card.id in sales else 0)
        assert card.total_spent == (sales[card.id].spent if card.id in sales else 0)
    purchases = db.session.execute(
        select(
            func.count(Purchase.id), func.sum(Purchase.amount), func.sum(Purchase.amount_paid),
            func.sum(Purchase.points_earned), func.sum(Purchase.points_used),
        )
    ).one()
    weekly = db.session.execute(
        select(
            func.sum(MerchantWeeklyStats.purchases), func.sum(MerchantWeeklyStats.revenue),
            func.sum(MerchantWeeklyStats.amount_paid), func.sum(MerchantWeeklyStats.points_earned),
            func.sum(MerchantWeeklyStats.points_redeemed),
        )
    ).one()
    assert tuple(weekly) == tuple(purchases)
    per_merchant_weekly = dict(
        db.session.execute(
            select(MerchantWeeklyStats.merchant_id, func.sum(MerchantWeeklyStats.revenue))
            .group_by(MerchantWeeklyStats.merchant_id)
        ).all()
    )
    per_merchant_sales = dict(
        db.session.execute(
            select(Purchase.merchant_id, func.sum(Purchase.amount)).group_by(Purchase.merchant_id)
        ).all()
    )
    assert per_merchant_weekly == per_merchant_sales
    new_customers, repeat_customers = db.session.execute(
        select(func.sum(MerchantWeeklyStats.new_customers), func.sum(MerchantWeeklyStats.repeat_customers))
    ).one()
    assert new_customers == len(cards)
    assert repeat_customers == sum(1 for card in cards if card.visits >= 2)
    # The running totals behind lifetime value and cohorts: what the purchase service keeps with
    # every sale (a bulk writer once skipped them, and the demo's cohort table stayed empty).
    months = {
        row.membership_id: row
        for row in db.session.execute(
            select(
                CustomerMonthTotals.membership_id,
                func.sum(CustomerMonthTotals.purchases).label("visits"),
                func.sum(CustomerMonthTotals.revenue).label("spent"),
            ).group_by(CustomerMonthTotals.membership_id)
        )
    }
    assert {card_id: (row.visits, row.spent) for card_id, row in months.items()} == {
        card_id: (row.visits, row.spent) for card_id, row in sales.items()
    }


def test_demo_builds_a_consistent_neighbourhood(app):
    lines: list[str] = []
    created = demo.load(echo=lines.append, **SMALL)

    network = db.session.scalar(select(Network).where(Network.slug == "abay-street"))
    assert network.currency == "KZT"
    assert network.point_value_minor == 100  # one point is one tenge: balances read like money
    merchants = db.session.scalars(select(Merchant).where(Merchant.network_id == network.id)).all()
    assert len(merchants) >= 8
    assert len({merchant.category for merchant in merchants}) >= 8
    upload_folder = Path(app.config["UPLOAD_FOLDER"])
    for merchant in merchants:
        assert merchant.status == "active"
        assert merchant.description and merchant.opening_hours
        assert merchant.address.startswith("ул. Абая")
        assert merchant.price_items and all(item.price > 0 for item in merchant.price_items)
        assert merchant.photos, merchant.name
        assert (upload_folder / merchant.photos[0].filename).stat().st_size > 5000
        roles = set(db.session.scalars(select(StaffRole.role).where(StaffRole.merchant_id == merchant.id)))
        assert roles == {"owner", "cashier"}
    assert len({merchant.cashback_bp for merchant in merchants}) > 3
    assert len({merchant.max_points_share_pct for merchant in merchants}) > 3

    assert created["customers"] == SMALL["customers"]
    assert _count(Purchase) == SMALL["purchases"] == created["purchases"]
    assert db.session.scalar(select(func.count()).where(Purchase.points_used > 0)) > 0
    first, last = db.session.execute(select(func.min(Purchase.created_at), func.max(Purchase.created_at))).one()
    assert last - first > timedelta(days=90)
    assert _count(ConsentRecord) >= _count(Membership)
    _assert_books_balance()

    # The printed logins work with the printed password.
    output = "\n".join(lines)
    assert demo.DEMO_PASSWORD in output and demo.OPERATOR_EMAIL in output
    for email in (demo.OPERATOR_EMAIL, "owner@salon-aru.example.com", "cashier@salon-aru.example.com"):
        assert email in output
        assert accounts.authenticate(db.session, email, demo.DEMO_PASSWORD) is not None
    customer_email = demo.customer_specs(1)[0].email
    assert customer_email in output
    assert accounts.authenticate(db.session, customer_email, demo.DEMO_PASSWORD) is not None


def test_plugin_defaults_are_made_in_the_owners_language(app):
    """Enabling a plugin creates defaults (status level names) in the owner's language, not English."""
    if "gamification" not in app.extensions["neighbourly"].modules:
        pytest.skip("the gamification plugin is not installed")
    from plugins.gamification.models import Level

    demo.load(echo=lambda line: None, **SMALL)
    names = set(db.session.scalars(select(Level.name)))
    assert "Серебро" in names and "Silver" not in names


def _latin_words(text: str) -> list[str]:
    """Words of four or more Latin letters, outside ``{placeholders}`` and known brand-like tokens."""
    import re

    text = re.sub(r"\{[^}]*\}", "", text)
    return [word for word in re.findall(r"[A-Za-z]{4,}", text) if word not in {"VIP"}]


def test_the_demo_street_reads_in_the_networks_language(app):
    """Descriptions, price lists, news, levels, surveys, deals and certificate messages are Russian,
    and a shop open around the clock does not announce opening earlier."""
    import re

    demo.load(echo=lambda line: None, **SMALL)
    network = db.session.scalar(select(Network).where(Network.slug == demo.NETWORK_SLUG))
    assert network.default_locale == "ru"
    texts: list[str] = [network.name, network.description or ""]
    for merchant in db.session.scalars(select(Merchant).where(Merchant.network_id == network.id)):
        texts += [merchant.name, merchant.description, merchant.opening_hours, merchant.address]
        texts += [item.name for item in merchant.price_items]
    modules = set(app.extensions["neighbourly"].modules)
    if "news" in modules:
        from plugins.news.models import NewsPost

        posts = db.session.execute(select(NewsPost.title, NewsPost.body, Merchant.opening_hours)
                                   .join(Merchant, Merchant.id == NewsPost.merchant_id)).all()
        assert posts
        for title, body, opening in posts:
            texts += [title, body]
            if hours.open_around_the_clock(opening):
                assert "раньше" not in body, body  # nothing opens earlier at a 24-hour car wash
    if "gamification" in modules:
        from plugins.gamification.models import Level

        texts += list(db.session.scalars(select(Level.name)))
    if "surveys" in modules:
        from plugins.surveys.models import Question, Survey

        texts += list(db.session.scalars(select(Survey.title)))
        texts += list(db.session.scalars(select(Question.text)))
    if "group_deals" in modules:
        from plugins.group_deals.models import Deal

        for title, description in db.session.execute(select(Deal.title, Deal.description)):
            texts += [title, description]
    if "cross_marketing" in modules:
        from plugins.cross_marketing.models import Offer

        texts += [message for message in db.session.scalars(select(Offer.message)) if message]
    assert len(texts) > 80
    english = [(text, _latin_words(text)) for text in texts if _latin_words(text)]
    assert english == []
    # Every text is written in Cyrillic, but for the top level's name, which Russian keeps as "VIP".
    without_cyrillic = [
        text for text in texts
        if text.strip() and text != "VIP" and not re.search("[А-Яа-яЁёӘәҒғҚқҢңӨөҰұҮүҺһІі]", text)
    ]
    assert without_cyrillic == []


def test_plugins_add_sample_content_once(app):
    """News, a ring of certificate partnerships, an open survey with answers and rated visits."""
    modules = app.extensions["neighbourly"].modules
    if not {"news", "cross_marketing", "surveys"} <= set(modules):
        pytest.skip("the plugins with demo content are not installed")
    from plugins.cross_marketing.models import Certificate, Partnership
    from plugins.news.models import NewsPost
    from plugins.surveys.models import Complaint, Rating, Response, Survey

    models = (NewsPost, Partnership, Certificate, Survey, Response, Rating, Complaint)
    demo.load(echo=lambda line: None, **SMALL)
    counts = {model.__name__: _count(model) for model in models}
    assert all(counts.values()), counts
    assert set(db.session.scalars(select(Partnership.status))) == {"active"}
    # Survey rewards came as certificates through the reward hooks, and every sum still holds.
    assert db.session.scalar(select(func.count()).select_from(Certificate).where(
        Certificate.issued_reason != "")) > 0
    _assert_books_balance()
    demo.load(echo=lambda line: None, **SMALL)
    assert {model.__name__: _count(model) for model in models} == counts


def test_demo_is_idempotent(app):
    demo.load(echo=lambda line: None, **SMALL)
    counts = {model.__name__: _count(model) for model in (User, Merchant, MerchantPhoto, Membership, Purchase, LedgerEntry)}
    weekly = db.session.scalar(select(func.sum(MerchantWeeklyStats.revenue + MerchantWeeklyStats.new_customers)))
    lines: list[str] = []

    created = demo.load(echo=lines.append, **SMALL)

    assert created == {}
    assert "nothing changed" in "\n".join(lines)
    assert counts == {model.__name__: _count(model) for model in (User, Merchant, MerchantPhoto, Membership, Purchase, LedgerEntry)}
    assert weekly == db.session.scalar(select(func.sum(MerchantWeeklyStats.revenue + MerchantWeeklyStats.new_customers)))


def _sales() -> list[tuple]:
    return [
        tuple(row)
        for row in db.session.execute(
            select(
                Purchase.idempotency_key, Purchase.membership_id, Purchase.amount, Purchase.points_used,
                Purchase.amount_paid, Purchase.points_earned, Purchase.created_at,
            ).order_by(Purchase.idempotency_key)
        )
    ]


def test_the_same_clock_gives_the_same_sales(app, tmp_path):
    """The plan is fixed by the seed and the clock: a second street loaded at the same ``now``
    records the same sales (points spent follow each card's real balance)."""
    from webapp import create_app
    from webapp.config import TestConfig

    demo.load(echo=lambda line: None, now=FIXED_NOW, **SMALL)
    first = _sales()
    assert any(points for _key, _card, _amount, points, *_rest in first)

    again = create_app(
        {
            **{key: getattr(TestConfig, key) for key in dir(TestConfig) if key.isupper()},
            "DATABASE_URL": f"sqlite:///{tmp_path / 'again.db'}",
            "UPLOAD_FOLDER": str(tmp_path / "again-uploads"),
        }
    )
    with again.app_context():
        db.create_all()  # like the fixture's schema; this test is about sales, not migrations
        demo.load(echo=lambda line: None, now=FIXED_NOW, **SMALL)
        second = _sales()
        _assert_books_balance()
        db.session.remove()
        db.engine.dispose()

    assert len(first) == SMALL["purchases"]
    assert first == second


@pytest.mark.parametrize("backend", ["sqlite"])
def test_full_size_demo_loads(app):
    created = demo.load(echo=lambda line: None)
    assert created["customers"] >= 200
    assert created["purchases"] >= 3000
    _assert_books_balance()


def test_the_demo_command_comes_from_the_demo_package(app):
    """``flask demo`` is registered from ``CLI_COMMANDS`` and loads the street; without the entry
    (or with a package that is not installed) the core has no such command."""
    from tests.conftest import make_app

    result = app.test_cli_runner().invoke(args=["demo", "--customers", "5", "--purchases", "20"])
    assert result.exit_code == 0, result.output
    assert "Demo neighbourhood loaded" in result.output and demo.DEMO_PASSWORD in result.output
    assert _count(Purchase) == 20

    bare = make_app("sqlite://", CLI_COMMANDS=["neighbourly_demo_not_installed.cli"])
    assert "demo" in app.cli.commands
    assert "demo" not in bare.cli.commands and "network-create" in bare.cli.commands

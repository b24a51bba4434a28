"""The customer's wallet: own card code and QR, every open card with balance and history."""

from __future__ import annotations

import re

from webapp.extensions import db
from webapp.services import codes, ledger
from webapp.services.purchases import PurchaseDraft, record_purchase


def test_wallet_needs_sign_in(client):
    response = client.get("/wallet/")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_empty_wallet_explains_how_to_join(client, make_user, network):
    client.login(make_user())
    page = client.get("/wallet/").get_data(as_text=True)
    assert "No cards yet" in page
    assert 'href="/join"' in page and 'href="/"' in page


def test_wallet_shows_card_code_balance_and_history(client, make_user, make_merchant, make_member, give_points):
    merchant = make_merchant(name="Crumb Bakery", category="bakery", cashback_bp=1000)
    user = make_user()
    member = make_member(merchant, user=user, points=1500)
    give_points(member, 250, reason="Birthday gift")
    record_purchase(
        db.session, merchant, member,
        PurchaseDraft(membership_id=member.id, amount=10000, points_to_use=500, idempotency_key="w1"),
    )
    db.session.refresh(member)
    assert member.balance == ledger.ledger_sum(db.session, member.id)
    client.login(user)

    page = client.get("/wallet/").get_data(as_text=True)
    assert codes.group(user.card_code) in page
    assert page.count("<svg") >= 1  # the till QR
    assert "Crumb Bakery" in page and f'href="/m/{merchant.slug}"' in page
    assert f"{member.balance:,}" in page
    assert f"₸{member.balance / 100:,.2f}".removesuffix(".00") in page  # one point is one tiyn by default
    # The wallet shows each card's latest line; the card's page has the whole history.
    assert "Birthday gift" not in page and "Welcome bonus" not in page
    assert "Latest:" in page
    assert f'href="/wallet/cards/{member.id}"' in page
    card = client.get(f"/wallet/cards/{member.id}").get_data(as_text=True)
    assert "Welcome bonus" in card and "Birthday gift" in card
    assert "+250" in card and "−500" in card  # the points paid with, as a minus line


def test_wallet_shows_the_latest_line_and_full_history_paginates(client, make_user, make_merchant, make_member, give_points):
    merchant = make_merchant()
    user = make_user()
    member = make_member(merchant, user=user)
    for number in range(1, 31):
        give_points(member, number, reason=f"Gift number {number:02d}")
    client.login(user)

    wallet = client.get("/wallet/").get_data(as_text=True)
    shown = sorted(re.findall(r"Gift number (\d\d)", wallet))
    assert shown == ["30"]

    first = client.get(f"/wallet/cards/{member.id}").get_data(as_text=True)
    assert len(re.findall(r"Gift number \d\d", first)) == 25
    assert "Gift number 30" in first and "Page 1 of 2" in first
    second = client.get(f"/wallet/cards/{member.id}?page=2").get_data(as_text=True)
    assert sorted(re.findall(r"Gift number (\d\d)", second)) == ["01", "02", "03", "04", "05"]
    # Nonsense page numbers land on a real page instead of failing.
    assert client.get(f"/wallet/cards/{member.id}?page=-3").status_code == 200
    assert client.get(f"/wallet/cards/{member.id}?page=abc").status_code == 200


def test_someone_elses_card_history_is_missing(client, make_user, make_merchant, make_member):
    merchant = make_merchant()
    mine = make_member(merchant)
    theirs = make_member(merchant)
    client.login(mine.user)
    assert client.get(f"/wallet/cards/{mine.id}").status_code == 200
    assert client.get(f"/wallet/cards/{theirs.id}").status_code == 404
    assert client.get("/wallet/cards/999999").status_code == 404
    assert "Person" not in client.get(f"/wallet/cards/{theirs.id}").get_data(as_text=True).split("<main")[1]


def test_wallet_keeps_cards_of_a_suspended_merchant(client, make_user, make_merchant, make_member):
    merchant = make_merchant(name="Paused Pizza")
    member = make_member(merchant, points=700)
    merchant.status = "suspended"
    db.session.commit()
    client.login(member.user)
    page = client.get("/wallet/").get_data(as_text=True)
    assert "Paused Pizza" in page and "points are kept" in page
    assert f'href="/m/{merchant.slug}"' not in page  # its e-card is not public now


def test_wallet_history_fragment_for_htmx(client, make_user, make_merchant, make_member, give_points):
    merchant = make_merchant()
    member = make_member(merchant, points=10)
    client.login(member.user)
    response = client.get(f"/wallet/cards/{member.id}", headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in body and "Welcome bonus" in body


def test_card_summary_lines_come_from_the_hook_in_order_and_escaped(app, client, make_user, make_merchant, make_member):
    from webapp.contracts import WalletSummaryLine
    from webapp.plugins import hookimpl

    class Summary:
        @hookimpl
        def neighbourly_collect_wallet_summary(self, merchant, membership):
            return [
                WalletSummaryLine(key="b", text="Second <b>line</b>", source="test", order=90),
                WalletSummaryLine(key="a", text="First line", source="test", order=10, url="/somewhere", tone="notice"),
            ]

    app.extensions["neighbourly"].pm.register(Summary(), name="wallet-summary-test")
    merchant = make_merchant()
    member = make_member(merchant, user=make_user())
    client.login(member.user)
    wallet = client.get("/wallet/").get_data(as_text=True)
    assert '<a href="/somewhere">First line</a>' in wallet
    assert "Second &lt;b&gt;line&lt;/b&gt;" in wallet  # plain text, never HTML
    assert wallet.index("First line") < wallet.index("Second")
    assert 'class="summary-test tone-notice"' in wallet
    # The card's own page repeats the summary above the plugins' panels and the history.
    card = client.get(f"/wallet/cards/{member.id}").get_data(as_text=True)
    assert "First line" in card and "History at" in card

"""The till over HTTP: finding customers, live quotes, idempotent purchases, receipts and refunds."""

from __future__ import annotations

import re

import pytest
from flask import g
from markupsafe import Markup
from sqlalchemy import func, select

from tests.conftest import PASSWORD, form_status
from tests.contracts.plugin_kit import build_plugin
from tests.kit import enable_plugins
from webapp.contracts import CheckoutLine
from webapp.extensions import db
from webapp.models import LedgerEntry, Membership, Purchase, PurchaseDecline
from webapp.services import codes, ledger
from webapp.services.purchases import PurchaseDraft, record_purchase

# KZT has two decimals: "40" typed at the till is 4000 minor units; with a 50 % share at most
# 2000 points may pay for it, and 10 % cashback on what is paid in money is earned.
BALANCE = 3000


def _probe_checkout_lines(merchant, membership):
    return [CheckoutLine("Probe voucher", "Worth 5 on the next visit", order=5, source="probe_till")]


def _probe_validate(merchant, membership, draft):
    if draft.options.get("voucher") == "BAD":
        return "The probe voucher BAD is not valid here."
    return None


def _probe_recorded(merchant, purchase, membership, session):
    if purchase.amount == 13300:  # a bill of 133.00 makes this plugin fail mid-transaction
        raise RuntimeError("probe plugin failed")
    if purchase.amount == 7700:  # a bill of 77.00 gets a bonus on the buyer's own card
        ledger.post(session, [ledger.Posting(membership.id, merchant.id, "adjust", 55, "Probe bonus")])


def _probe_receipt_slot(merchant, purchase):
    return Markup('<p class="probe-slot">Probe receipt slot</p>')


@pytest.fixture
def app_overrides():
    probe = build_plugin(
        "probe_till",
        hooks={
            "neighbourly_collect_checkout_lines": _probe_checkout_lines,
            "neighbourly_validate_purchase": _probe_validate,
            "neighbourly_tpl_receipt": _probe_receipt_slot,
            "neighbourly_purchase_recorded": _probe_recorded,
        },
    )
    return {"EXTRA_PLUGIN_OBJECTS": [probe], "RATELIMIT_ENABLED": False}


@pytest.fixture
def shop(make_user, make_merchant):
    """An active merchant with 10 % cashback, a 50 % points share and one cashier."""
    cashier = make_user(name="Carla Cashier")
    merchant = make_merchant(cashback_bp=1000, max_points_share_pct=50, cashiers=[cashier])
    merchant.cashier = cashier
    return merchant


@pytest.fixture
def customer(shop, make_user, make_member):
    user = make_user(name="Anna Karimova", phone="+7 701 123 4567")
    return make_member(shop, user=user, points=BALANCE)


def post_form(client, url, data=None, htmx=False):
    """Like ``client.post_form``, with a token that matches the session of the moment.

    Two things in the shared helper break once someone is signed in: the sign-in page it reads
    the token from redirects signed-in users, and the test's app context (shared with requests)
    keeps the token of an earlier session in ``g``.
    """
    g.pop("csrf_token", None)
    token_page = client.get("/auth/login")
    if token_page.status_code != 200:
        token_page = client.get("/no-such-page-for-the-csrf-token")  # any page with the layout
    token = re.search(r'name="csrf-token" content="([^"]+)"', token_page.get_data(as_text=True)).group(1)
    data = dict(data or {})
    headers = {}
    if htmx:
        headers = {"HX-Request": "true", "X-CSRFToken": token}
    else:
        data.setdefault("csrf_token", token)
    return client.post(url, data=data, headers=headers)


def sign_in(client, user):
    """Sign out whoever is signed in, then sign ``user`` in."""
    post_form(client, "/auth/logout")
    response = post_form(client, "/auth/login", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 303, response.get_data(as_text=True)[:300]


def till_url(merchant, suffix=""):
    return f"/business/{merchant.slug}/till{suffix}"


def fresh_key(client, merchant, membership) -> str:
    """The idempotency key the server put into the purchase form."""
    page = client.get(till_url(merchant), query_string={"member": membership.id})
    assert page.status_code == 200
    match = re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', page.get_data(as_text=True))
    assert match, "the purchase form carries no server-generated key"
    return match.group(1)


def buy(client, merchant, membership, amount="40", points="", key=None, htmx=True, **extra):
    data = {"membership_id": membership.id, "amount": amount, "points": points,
            "idempotency_key": key or fresh_key(client, merchant, membership), **extra}
    return post_form(client, till_url(merchant, "/purchase"), data, htmx=htmx)


def purchase_count(merchant) -> int:
    return db.session.scalar(select(func.count(Purchase.id)).where(Purchase.merchant_id == merchant.id))


def ledger_count(membership) -> int:
    return db.session.scalar(
        select(func.count(LedgerEntry.id)).where(LedgerEntry.membership_id == membership.id)
    )


def balance_of(membership) -> int:
    db.session.expire_all()
    return db.session.get(Membership, membership.id).balance


# --------------------------------------------------------------------------- finding the customer


def test_find_by_card_code_typed_in_lower_case_with_dashes(client, shop, customer):
    sign_in(client, shop.cashier)
    typed = codes.group(customer.user.card_code.lower())
    response = post_form(client, till_url(shop, "/find"), {"q": f"  {typed} "}, htmx=True)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Anna K." in body
    assert "Karimova" not in body  # first name and initial only
    assert "3,000" in body
    assert f'name="membership_id" id="f-membership" value="{customer.id}"' in body
    assert "<html" not in body  # htmx gets the checkout region only


def test_find_by_qr_text_and_by_phone(client, shop, customer):
    sign_in(client, shop.cashier)
    qr = post_form(client, till_url(shop, "/find"), {"q": f"neighbourly:card:{customer.user.card_code}"}, htmx=True)
    assert qr.status_code == 200 and "Anna K." in qr.get_data(as_text=True)
    phone = post_form(client, till_url(shop, "/find"), {"q": "+7 (701) 123-45-67"}, htmx=True)
    assert phone.status_code == 200 and "Anna K." in phone.get_data(as_text=True)


def test_find_without_javascript_redirects_to_the_customer(client, shop, customer):
    sign_in(client, shop.cashier)
    response = post_form(client, till_url(shop, "/find"), {"q": customer.user.card_code})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/till?member={customer.id}")
    page = client.get(response.headers["Location"])
    assert page.status_code == 200 and "Anna K." in page.get_data(as_text=True)


def test_unknown_customer_gets_a_message_with_the_join_code(client, shop, customer, make_user):
    sign_in(client, shop.cashier)
    response = post_form(client, till_url(shop, "/find"), {"q": "+7 700 000 0000"}, htmx=True)
    body = response.get_data(as_text=True)
    assert form_status(response) == 422
    assert "No customer found" in body
    assert shop.join_code in body
    # A registered person who never joined this merchant is not found either.
    stranger = make_user(name="Boris Stranger")
    response = post_form(client, till_url(shop, "/find"), {"q": stranger.card_code}, htmx=True)
    assert form_status(response) == 422 and "Boris" not in response.get_data(as_text=True)


def test_member_of_another_merchant_is_not_found_here(client, shop, make_merchant, make_member, make_user):
    other = make_merchant()
    outsider = make_member(other, user=make_user(name="Olga Other"), points=100)
    sign_in(client, shop.cashier)
    response = post_form(client, till_url(shop, "/find"), {"q": outsider.user.card_code}, htmx=True)
    assert form_status(response) == 422
    assert client.get(till_url(shop), query_string={"member": outsider.id}).status_code == 404


def test_plugin_checkout_lines_show_for_the_customer(client, shop, customer):
    enable_plugins(shop, "probe_till")
    sign_in(client, shop.cashier)
    body = client.get(till_url(shop), query_string={"member": customer.id}).get_data(as_text=True)
    assert "Probe voucher" in body and "Worth 5 on the next visit" in body


# --------------------------------------------------------------------------- quote and purchase


def test_quote_fragment_shows_the_maximum_points(client, shop, customer):
    sign_in(client, shop.cashier)
    response = client.get(
        till_url(shop, "/quote"),
        query_string={"membership_id": customer.id, "amount": "40", "points": ""},
        headers={"HX-Request": "true"},
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'data-max-points="2000"' in body
    assert 'data-fill-target="f-points" data-fill-value="2000"' in body
    assert "+400" in body  # 10 % of 40.00 with no points used
    # The balance caps the maximum when it is below the share.
    capped = client.get(
        till_url(shop, "/quote"),
        query_string={"membership_id": customer.id, "amount": "100000", "points": "1500"},
    ).get_data(as_text=True)
    assert f'data-max-points="{BALANCE}"' in capped


def test_full_purchase_with_points_over_htmx(client, shop, customer):
    enable_plugins(shop, "probe_till")
    sign_in(client, shop.cashier)
    response = buy(client, shop, customer, amount="40", points="1500")
    body = response.get_data(as_text=True)
    assert response.status_code == 200, body
    assert "Purchase recorded" in body
    assert response.headers["HX-Trigger"] == "purchase-recorded"
    assert "Probe receipt slot" in body
    assert "Already recorded" not in body
    purchase = db.session.scalar(select(Purchase).where(Purchase.merchant_id == shop.id))
    assert (purchase.amount, purchase.points_used, purchase.amount_paid) == (4000, 1500, 2500)
    assert purchase.points_earned == 250
    assert purchase.cashier_id == shop.cashier.id
    assert balance_of(customer) == BALANCE - 1500 + 250
    assert ledger.ledger_sum(db.session, customer.id) == BALANCE - 1500 + 250
    assert "+250" in body and "1,750" in body  # earned and new balance on the receipt


@pytest.mark.parametrize(("amount", "plugin_bonus"), [("40", 0), ("77", 55)])
def test_the_receipt_shows_the_card_balance_after_everything_the_sale_did(client, shop, customer, amount, plugin_bonus):
    # The card's figures come from the sale's own UPDATE unless a plugin moved the balance too.
    enable_plugins(shop, "probe_till")
    sign_in(client, shop.cashier)
    response = buy(client, shop, customer, amount=amount, points="1000")
    body = response.get_data(as_text=True)
    assert response.status_code == 200, body
    earned = (int(amount) * 100 - 1000) // 10
    expected = BALANCE - 1000 + earned + plugin_bonus
    assert balance_of(customer) == expected
    receipt = body[body.index("Card balance"):]
    assert f"{expected:,}" in receipt[:200], receipt[:200]


def test_replayed_key_shows_the_same_receipt_and_records_once(client, shop, customer):
    sign_in(client, shop.cashier)
    key = fresh_key(client, shop, customer)
    first = buy(client, shop, customer, amount="40", points="100", key=key)
    second = buy(client, shop, customer, amount="40", points="100", key=key)
    assert first.status_code == second.status_code == 200
    number = re.search(r"No\. (\d+)", first.get_data(as_text=True)).group(1)
    assert f"No. {number}" in second.get_data(as_text=True)
    assert "Already recorded" in second.get_data(as_text=True)
    assert purchase_count(shop) == 1
    assert balance_of(customer) == BALANCE - 100 + 390


def test_same_key_with_a_different_amount_is_refused(client, shop, customer):
    sign_in(client, shop.cashier)
    key = fresh_key(client, shop, customer)
    assert buy(client, shop, customer, amount="40", key=key).status_code == 200
    balance = balance_of(customer)
    entries = ledger_count(customer)
    response = buy(client, shop, customer, amount="50", key=key)
    body = response.get_data(as_text=True)
    assert form_status(response) == 409
    assert "already submitted with different details" in body
    assert 'id="purchase-form"' in body  # the form is back, with a new key
    assert f'value="{key}"' not in body
    assert purchase_count(shop) == 1
    assert db.session.scalar(select(Purchase.amount).where(Purchase.merchant_id == shop.id)) == 4000
    assert balance_of(customer) == balance and ledger_count(customer) == entries


def test_more_points_than_allowed_is_declined_and_nothing_written(client, shop, customer):
    sign_in(client, shop.cashier)
    entries = ledger_count(customer)
    key = fresh_key(client, shop, customer)
    response = buy(client, shop, customer, amount="40", points="2500", key=key)
    body = response.get_data(as_text=True)
    assert form_status(response) == 422
    assert "At most 2,000 points" in body
    assert 'aria-invalid="true"' in body
    assert f'value="{key}"' not in body  # the declined key is spent; the corrected form gets a new one
    assert purchase_count(shop) == 0
    assert balance_of(customer) == BALANCE and ledger_count(customer) == entries


def test_plugin_options_reach_the_draft(client, shop, customer):
    enable_plugins(shop, "probe_till")
    sign_in(client, shop.cashier)
    declined = buy(client, shop, customer, amount="40", opt_voucher="BAD")
    assert form_status(declined) == 422
    assert "probe voucher BAD is not valid" in declined.get_data(as_text=True)
    assert purchase_count(shop) == 0
    assert buy(client, shop, customer, amount="40", opt_voucher="GOOD").status_code == 200
    assert purchase_count(shop) == 1


def test_plugin_failure_inside_the_transaction_is_shown_and_rolled_back(client, shop, customer):
    enable_plugins(shop, "probe_till")
    sign_in(client, shop.cashier)
    entries = ledger_count(customer)
    response = buy(client, shop, customer, amount="133", points="500")
    assert form_status(response) == 422
    assert "nothing was charged" in response.get_data(as_text=True)
    assert 'id="purchase-form"' in response.get_data(as_text=True)
    assert purchase_count(shop) == 0
    assert balance_of(customer) == BALANCE and ledger_count(customer) == entries


@pytest.mark.parametrize("amount", ["abc", "-5", "0", "", "1.234"])
def test_bad_amounts_are_rejected_before_the_service(client, shop, customer, amount):
    sign_in(client, shop.cashier)
    response = buy(client, shop, customer, amount=amount)
    body = response.get_data(as_text=True)
    assert form_status(response) == 422
    assert 'id="e-amount"' in body
    assert purchase_count(shop) == 0
    assert db.session.scalar(select(func.count(PurchaseDecline.id))) == 0
    assert balance_of(customer) == BALANCE


def test_bad_points_text_is_rejected(client, shop, customer):
    sign_in(client, shop.cashier)
    response = buy(client, shop, customer, amount="40", points="-10")
    assert form_status(response) == 422
    assert 'id="e-points"' in response.get_data(as_text=True)
    assert purchase_count(shop) == 0


def test_till_without_javascript_records_and_renders_the_whole_page(client, shop, customer):
    sign_in(client, shop.cashier)
    response = buy(client, shop, customer, amount="40", points="200", htmx=False)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert body.lstrip().lower().startswith("<!doctype html>")
    assert "Purchase recorded" in body
    assert "Next customer" in body
    purchase_id = db.session.scalar(select(Purchase.id).where(Purchase.merchant_id == shop.id))
    assert f"/business/{shop.slug}/purchases/{purchase_id}" in body  # today's list includes it
    assert purchase_count(shop) == 1


def test_recent_list_holds_only_this_merchants_purchases(client, shop, customer, make_merchant, make_member):
    other = make_merchant()
    other_member = make_member(other, points=0)
    theirs = record_purchase(
        db.session, other, other_member,
        PurchaseDraft(membership_id=other_member.id, amount=5000, points_to_use=0, idempotency_key="o1"),
    ).purchase
    sign_in(client, shop.cashier)
    buy(client, shop, customer, amount="40")
    ours = db.session.scalar(select(Purchase.id).where(Purchase.merchant_id == shop.id))
    body = client.get(till_url(shop, "/recent"), headers={"HX-Request": "true"}).get_data(as_text=True)
    assert f"/purchases/{ours}" in body
    assert f"/purchases/{theirs.id}" not in body


# --------------------------------------------------------------------------- who may use the till


def test_non_staff_user_gets_404(client, shop, customer):
    sign_in(client, customer.user)
    assert client.get(till_url(shop)).status_code == 404
    assert buy(client, shop, customer, key="k" * 32).status_code == 404
    assert purchase_count(shop) == 0


def test_signed_out_visitor_is_sent_to_sign_in(client, shop):
    response = client.get(till_url(shop))
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_cashier_of_one_merchant_gets_404_at_another(client, shop, make_merchant, make_member):
    other = make_merchant()
    other_member = make_member(other, points=500)
    theirs = record_purchase(
        db.session, other, other_member,
        PurchaseDraft(membership_id=other_member.id, amount=5000, points_to_use=0, idempotency_key="o1"),
    ).purchase
    sign_in(client, shop.cashier)
    assert client.get(till_url(other)).status_code == 404
    assert client.get(f"/business/{other.slug}/purchases/{theirs.id}").status_code == 404
    # Their customer id through our own till is not ours either.
    response = post_form(client,
        till_url(shop, "/purchase"),
        {"membership_id": other_member.id, "amount": "10", "idempotency_key": "x" * 32}, htmx=True,
    )
    assert response.status_code == 404
    assert client.get(f"/business/{shop.slug}/purchases/{theirs.id}").status_code == 404
    assert purchase_count(shop) == 0 and purchase_count(other) == 1


def test_pending_merchant_shows_a_notice_and_records_nothing(client, make_user, make_merchant, make_member):
    cashier = make_user()
    merchant = make_merchant(status="active", cashiers=[cashier])
    member = make_member(merchant, points=100)
    merchant.status = "pending"
    db.session.commit()
    sign_in(client, cashier)
    page = client.get(till_url(merchant))
    assert page.status_code == 200
    assert "Sales cannot be recorded yet" in page.get_data(as_text=True)
    assert 'id="f-q"' not in page.get_data(as_text=True)
    response = post_form(client,
        till_url(merchant, "/purchase"),
        {"membership_id": member.id, "amount": "10", "idempotency_key": "p" * 32}, htmx=True,
    )
    assert form_status(response) == 422
    assert purchase_count(merchant) == 0


# --------------------------------------------------------------------------- refunds


def test_owner_refunds_once_and_the_balance_is_restored(client, shop, customer):
    sign_in(client, shop.cashier)
    buy(client, shop, customer, amount="40", points="1500")
    purchase_id = db.session.scalar(select(Purchase.id).where(Purchase.merchant_id == shop.id))
    assert balance_of(customer) == BALANCE - 1500 + 250

    sign_in(client, shop.owner)
    detail = client.get(f"/business/{shop.slug}/purchases/{purchase_id}").get_data(as_text=True)
    assert "Refund this purchase" in detail and "data-confirm=" in detail
    response = post_form(client, f"/business/{shop.slug}/purchases/{purchase_id}/refund")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/purchases/{purchase_id}")
    assert "was refunded" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert balance_of(customer) == BALANCE
    assert ledger.ledger_sum(db.session, customer.id) == BALANCE
    assert db.session.get(Purchase, purchase_id).refunded_at is not None

    again = post_form(client, f"/business/{shop.slug}/purchases/{purchase_id}/refund")
    assert again.status_code == 409
    assert "already been refunded" in again.get_data(as_text=True)
    assert balance_of(customer) == BALANCE


def test_refund_refused_when_earned_points_are_spent(client, shop, customer):
    sign_in(client, shop.cashier)
    buy(client, shop, customer, amount="40")  # earns 400: balance 3400
    first = db.session.scalar(select(Purchase.id).where(Purchase.merchant_id == shop.id))
    buy(client, shop, customer, amount="68", points="3400")  # pays 34.00 in money, earns 340
    assert balance_of(customer) == 340
    sign_in(client, shop.owner)
    response = post_form(client, f"/business/{shop.slug}/purchases/{first}/refund")
    assert response.status_code == 409
    assert "already been spent" in response.get_data(as_text=True)
    assert db.session.get(Purchase, first).refunded_at is None
    assert balance_of(customer) == 340 == ledger.ledger_sum(db.session, customer.id)


def test_cashier_cannot_refund(client, shop, customer):
    sign_in(client, shop.cashier)
    buy(client, shop, customer, amount="40")
    purchase_id = db.session.scalar(select(Purchase.id).where(Purchase.merchant_id == shop.id))
    detail = client.get(f"/business/{shop.slug}/purchases/{purchase_id}").get_data(as_text=True)
    assert "Refund this purchase" not in detail
    response = post_form(client, f"/business/{shop.slug}/purchases/{purchase_id}/refund")
    assert response.status_code == 404
    assert db.session.get(Purchase, purchase_id).refunded_at is None


def test_owner_cannot_refund_another_merchants_purchase(client, shop, make_merchant, make_member):
    other = make_merchant()
    other_member = make_member(other, points=0)
    theirs = record_purchase(
        db.session, other, other_member,
        PurchaseDraft(membership_id=other_member.id, amount=5000, points_to_use=0, idempotency_key="o1"),
    ).purchase
    sign_in(client, shop.owner)
    assert post_form(client, f"/business/{shop.slug}/purchases/{theirs.id}/refund").status_code == 404
    assert post_form(client, f"/business/{other.slug}/purchases/{theirs.id}/refund").status_code == 404
    assert db.session.get(Purchase, theirs.id).refunded_at is None


# --------------------------------------------------------------------------- items from the price list


@pytest.fixture
def menu(shop):
    """Three items on the shop's price list (KZT minor units)."""
    from webapp.services import price_items

    price_items.add_items(db.session, shop, [
        price_items.ItemRow(None, "Latte", 1_500), price_items.ItemRow(None, "Croissant", 900),
        price_items.ItemRow(None, "Tea <b>green</b>", 700),
    ], "en")
    db.session.commit()
    return {item.name: item for item in price_items.items_of(db.session, shop)}


def _lines_of(purchase_id):
    from webapp.models import PurchaseItem

    db.session.expire_all()
    return [
        (line.name, line.unit_price, line.quantity, line.price_item_id)
        for line in db.session.scalars(
            select(PurchaseItem).where(PurchaseItem.purchase_id == purchase_id).order_by(PurchaseItem.id)
        )
    ]


def test_the_till_lists_the_price_list_and_the_quote_prices_the_items(client, shop, customer, menu):
    sign_in(client, shop.cashier)
    page = client.get(till_url(shop), query_string={"member": customer.id}).get_data(as_text=True)
    assert f'name="qty.{menu["Latte"].id}"' in page and "Items from the price list" in page
    assert "Tea &lt;b&gt;green&lt;/b&gt;" in page and "<b>green</b>" not in page
    assert "qty.']" in page  # the live quote sends the quantities
    quote = client.get(
        till_url(shop, "/quote"),
        query_string={"membership_id": customer.id, "amount": "", f"qty.{menu['Latte'].id}": "2",
                      f"qty.{menu['Croissant'].id}": "1"},
        headers={"HX-Request": "true"},
    ).get_data(as_text=True)
    # 2 x 15.00 + 9.00 = 39.00; 10 % cashback is 390 points; half may be paid with points.
    assert 'data-amount="3900"' in quote and "Bill from 3 items" in quote
    assert 'data-amount-paid="3900"' in quote and 'data-points-earned="390"' in quote
    assert 'data-max-points="1950"' in quote
    # Nothing picked: the typed amount is the bill, as before.
    typed = client.get(
        till_url(shop, "/quote"), query_string={"membership_id": customer.id, "amount": "40"}
    ).get_data(as_text=True)
    assert 'data-amount-paid="4000"' in typed and "quote-items" not in typed


@pytest.mark.parametrize("htmx", [True, False])
def test_picked_items_make_the_bill_and_the_receipt_lists_them(client, shop, customer, menu, htmx):
    sign_in(client, shop.cashier)
    key = fresh_key(client, shop, customer)
    picks = {f"qty.{menu['Latte'].id}": "2", f"qty.{menu['Croissant'].id}": "1", f"qty.{menu['Tea <b>green</b>'].id}": ""}
    # The amount typed does not count once items are picked.
    first = buy(client, shop, customer, amount="", key=key, htmx=htmx, **picks)
    body = first.get_data(as_text=True)
    assert first.status_code == 200, body
    assert "Purchase recorded" in body and "Latte × 2" in body and "Croissant × 1" in body
    purchase = db.session.scalar(select(Purchase).where(Purchase.merchant_id == shop.id))
    assert (purchase.amount, purchase.amount_paid, purchase.points_earned) == (3900, 3900, 390)
    lines = _lines_of(purchase.id)
    assert lines == [("Latte", 1500, 2, menu["Latte"].id), ("Croissant", 900, 1, menu["Croissant"].id)]
    # The same key again (a double click): the first receipt, no second set of lines.
    again = buy(client, shop, customer, amount="", key=key, htmx=htmx, **picks)
    assert again.status_code == 200 and "Already recorded" in again.get_data(as_text=True)
    assert purchase_count(shop) == 1 and _lines_of(purchase.id) == lines
    # The same key with other quantities is another sale: refused, nothing written.
    changed = buy(client, shop, customer, amount="", key=key, htmx=htmx, **{**picks, f"qty.{menu['Latte'].id}": "3"})
    assert form_status(changed) == 409 and "different details" in changed.get_data(as_text=True)
    assert purchase_count(shop) == 1


def test_refunds_keep_the_lines_and_a_deleted_item_leaves_its_line(client, shop, customer, menu):
    from webapp.services import price_items

    sign_in(client, shop.cashier)
    assert buy(client, shop, customer, amount="", **{f"qty.{menu['Latte'].id}": "1"}).status_code == 200
    purchase_id = db.session.scalar(select(Purchase.id).where(Purchase.merchant_id == shop.id))
    sign_in(client, shop.owner)
    assert post_form(client, f"/business/{shop.slug}/purchases/{purchase_id}/refund").status_code == 303
    # The owner takes the latte off the list: the sale keeps its line, name and price as sold.
    price_items.save_items(db.session, shop, [price_items.ItemRow(menu["Croissant"].id, "Croissant", 900)])
    assert _lines_of(purchase_id) == [("Latte", 1500, 1, None)]
    detail = client.get(f"/business/{shop.slug}/purchases/{purchase_id}").get_data(as_text=True)
    assert "Latte × 1" in detail and "Refunded" in detail


@pytest.mark.parametrize(
    ("quantity", "message"),
    [("-1", "whole number from 1 to 999"), ("1000", "whole number from 1 to 999"), ("two", "whole number"),
     ("foreign", "not in this price list")],
)
def test_bad_items_are_refused_with_a_message_and_nothing_written(
    client, shop, customer, menu, make_merchant, quantity, message
):
    from webapp.services import price_items

    sign_in(client, shop.cashier)
    field = f"qty.{menu['Latte'].id}"
    if quantity == "foreign":  # another merchant's item: not on this till's list
        other = make_merchant()
        price_items.add_items(db.session, other, [price_items.ItemRow(None, "Their latte", 100)], "en")
        db.session.commit()
        field, quantity = f"qty.{price_items.items_of(db.session, other)[0].id}", "1"
    response = buy(client, shop, customer, amount="40", **{field: quantity})
    assert form_status(response) == 422
    assert message in response.get_data(as_text=True), response.get_data(as_text=True)
    assert purchase_count(shop) == 0 and balance_of(customer) == BALANCE

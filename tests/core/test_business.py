"""Merchant back office: applying, dashboard, customers, settings and staff, with tenant isolation."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.kit import buy
from webapp.extensions import db
from webapp.models import Merchant, StaffInvitation, StaffRole


def page_text(response) -> str:
    return response.get_data(as_text=True)


# --------------------------------------------------------------------------- home and applying


def test_business_home_requires_sign_in(client):
    response = client.get("/business/")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]


def test_new_owner_sees_empty_state_and_applies_to_a_network(client, make_user, network):
    owner = make_user(name="Dana Owner")
    client.login(owner)
    home = page_text(client.get("/business/"))
    assert "You have no business here yet" in home
    assert network.name in home  # the network list in the form

    response = client.post_form("/business/apply", {
        "network": str(network.id), "name": "Corner Bakery", "category": "bakery",
        "description": "Fresh bread", "address": "3 Abay Ave", "opening_hours": "7-19",
        "phone": "+7 701 000 0000", "cashback": "2.5", "share": "30",
    })
    assert response.status_code == 303
    merchant = db.session.scalar(select(Merchant).where(Merchant.name == "Corner Bakery"))
    assert merchant.status == "pending"
    assert merchant.cashback_bp == 250
    assert merchant.max_points_share_pct == 30
    role = db.session.scalar(select(StaffRole).where(StaffRole.merchant_id == merchant.id))
    assert (role.user_id, role.role) == (owner.id, "owner")

    home = page_text(client.get("/business/"))
    assert "Corner Bakery" in home
    assert "waiting for approval" in home
    assert "has applied to join" in home  # the confirmation


def test_application_with_bad_rates_is_refused_and_nothing_is_created(client, make_user, network):
    client.login(make_user())
    response = client.post_form("/business/apply", {
        "network": str(network.id), "name": "Too Generous", "category": "cafe",
        "cashback": "150", "share": "101",
    })
    assert response.status_code == 422
    text = page_text(response)
    assert "between 0% and 100%" in text
    assert 'aria-invalid="true"' in text
    assert db.session.scalar(select(Merchant).where(Merchant.name == "Too Generous")) is None


def test_declined_application_shows_the_operators_reason(client, make_merchant):
    merchant = make_merchant(status="declined")
    merchant.decline_reason = "Not on our street"
    db.session.commit()
    client.login(merchant.owner)
    text = page_text(client.get("/business/"))
    assert "Not on our street" in text
    assert "declined" in text


# --------------------------------------------------------------------------- access


def test_cashier_gets_404_on_owner_pages(client, make_user, make_merchant):
    cashier = make_user()
    merchant = make_merchant(cashiers=[cashier])
    client.login(cashier)
    for page in ("dashboard", "customers", "settings", "staff"):
        assert client.get(f"/business/{merchant.slug}/{page}").status_code == 404, page
    response = client.post_form(f"/business/{merchant.slug}/settings/rates", {"cashback": "50", "share": "100"})
    assert response.status_code == 404
    db.session.refresh(merchant)
    assert merchant.cashback_bp == 500
    # The cashier still sees the business on the home page, with a way to the till.
    assert merchant.name in page_text(client.get("/business/"))


def test_owner_of_one_merchant_gets_404_on_another(client, make_merchant, make_member):
    mine = make_merchant()
    theirs = make_merchant()
    their_customer = make_member(theirs)
    client.login(mine.owner)
    for page in ("dashboard", "customers", "settings", "staff"):
        assert client.get(f"/business/{mine.slug}/{page}").status_code == 200, page
        assert client.get(f"/business/{theirs.slug}/{page}").status_code == 404, page
    assert client.get(f"/business/{theirs.slug}/customers/{their_customer.id}").status_code == 404
    # Their membership id under my slug is not mine either.
    assert client.get(f"/business/{mine.slug}/customers/{their_customer.id}").status_code == 404
    response = client.post_form(f"/business/{theirs.slug}/settings/profile", {"name": "Hijacked", "category": "cafe"})
    assert response.status_code == 404
    db.session.refresh(theirs)
    assert theirs.name != "Hijacked"


# --------------------------------------------------------------------------- dashboard


def test_dashboard_empty_state_explains_the_first_steps(client, make_merchant):
    merchant = make_merchant()
    client.login(merchant.owner)
    text = page_text(client.get(f"/business/{merchant.slug}/dashboard"))
    assert "No purchases yet" in text
    assert merchant.join_code in text
    assert f"/business/{merchant.slug}/till" in text


def test_dashboard_shows_figures_after_purchases(client, make_merchant, make_member):
    merchant = make_merchant(cashback_bp=1000)
    first, second = make_member(merchant), make_member(merchant)
    buy(merchant, first, 400000)  # 4,000.00 KZT
    buy(merchant, first, 200000, points=100)
    buy(merchant, second, 300000)
    client.login(merchant.owner)
    response = client.get(f"/business/{merchant.slug}/dashboard")
    assert response.status_code == 200
    text = page_text(response)
    assert "No purchases yet" not in text
    assert "₸9,000" in text  # revenue
    assert "₸3,000" in text  # average check
    assert "50%" in text  # one of two customers came back
    assert text.count('class="bar"') == 36  # three charts of twelve weeks
    assert "Revenue per week" in text
    # Points at 10%: 40,000 + 19,990 + 30,000 issued, 100 redeemed.
    assert "89,990" in text and "89,890" in text


def test_dashboard_shows_plugin_panels_in_order(app, client, make_merchant):
    from webapp.contracts import DashboardPanel
    from webapp.plugins import hookimpl

    class Extra:
        @hookimpl
        def neighbourly_collect_dashboard_panels(self, merchant):
            return [DashboardPanel(key="lazy", title="Lazy panel", order=5, lazy_url="/lazy-panel")]

    app.extensions["neighbourly"].pm.register(Extra(), name="extra-panel-test")
    merchant = make_merchant()
    client.login(merchant.owner)
    text = page_text(client.get(f"/business/{merchant.slug}/dashboard"))
    assert 'hx-get="/lazy-panel"' in text
    assert 'hx-trigger="load"' in text
    assert text.index("Key figures") < text.index("Lazy panel")


# --------------------------------------------------------------------------- customers


def test_customer_search_and_pagination(client, make_user, make_merchant, make_member):
    merchant = make_merchant()
    for number in range(27):
        make_member(merchant, user=make_user(name=f"Member {number:02d}"))
    special = make_member(
        merchant, user=make_user(name="Zhanar Special", email="zhanar@example.com", phone="+7 701 555 1234")
    )
    outsider = make_member(make_merchant(), user=make_user(name="Zhanar Outsider"))
    client.login(merchant.owner)
    url = f"/business/{merchant.slug}/customers"

    first = page_text(client.get(url, query_string={"sort": "name"}))
    # Links to portraits (the page also links to the import and the exports).
    assert len(re.findall(rf"/business/{merchant.slug}/customers/\d+", first)) == 25
    assert "Member 00" in first and "Member 24" in first and "Member 25" not in first
    assert 'rel="next"' in first
    second = page_text(client.get(url, query_string={"sort": "name", "page": 2}))
    assert "Member 25" in second and "Member 26" in second and "Zhanar Special" in second
    assert "Member 00" not in second
    assert 'rel="next"' not in second

    for query in ("zhanar", "ZHANAR@example", "555 1234", special.user.card_code):
        text = page_text(client.get(url, query_string={"q": query}))
        assert "Zhanar Special" in text, query
        assert "Member 01" not in text, query
        assert "Zhanar Outsider" not in text, query
    assert outsider.user.name not in page_text(client.get(url, query_string={"q": "Outsider"}))
    assert "Nobody matches" in page_text(client.get(url, query_string={"q": "no-such-person%"}))

    # htmx live search gets only the results region; a plain request gets the page.
    fragment = page_text(client.get(url, query_string={"q": "zhanar"}, headers={"HX-Request": "true"}))
    assert fragment.lstrip().startswith('<div id="customer-results"')
    assert "<html" not in fragment and "Zhanar Special" in fragment


def test_customer_sorts_by_spend(client, make_merchant, make_member, make_user):
    merchant = make_merchant()
    small = make_member(merchant, user=make_user(name="Small Spender"))
    big = make_member(merchant, user=make_user(name="Big Spender"))
    buy(merchant, small, 1000)
    buy(merchant, big, 900000)
    client.login(merchant.owner)
    text = page_text(client.get(f"/business/{merchant.slug}/customers", query_string={"sort": "spend"}))
    assert text.index("Big Spender") < text.index("Small Spender")
    text = page_text(client.get(f"/business/{merchant.slug}/customers", query_string={"sort": "name"}))
    assert text.index("Big Spender") < text.index("Small Spender")
    never = make_member(merchant, user=make_user(name="Never Bought"))
    text = page_text(client.get(f"/business/{merchant.slug}/customers", query_string={"sort": "last_visit"}))
    assert text.index("Big Spender") < text.index("Small Spender") < text.index(never.user.name)
    text = page_text(client.get(f"/business/{merchant.slug}/customers", query_string={"sort": "joined"}))
    assert text.index("Never Bought") < text.index("Big Spender") < text.index("Small Spender")
    assert client.get(f"/business/{merchant.slug}/customers", query_string={"sort": "drop table", "page": "x"}).status_code == 200


def test_customer_portrait(client, make_merchant, make_member, make_user, give_points):
    merchant = make_merchant(cashback_bp=500)
    membership = make_member(merchant, user=make_user(name="Aliya Portrait"))
    give_points(membership, 50, reason="Welcome bonus")
    buy(merchant, membership, 100000)
    buy(merchant, membership, 300000, points=50)
    client.login(merchant.owner)
    response = client.get(f"/business/{merchant.slug}/customers/{membership.id}")
    assert response.status_code == 200
    text = page_text(response)
    assert "Aliya Portrait" in text
    assert "₸4,000" in text  # spend
    assert "₸2,000" in text  # average check
    assert "Welcome bonus" in text  # points history
    assert "Paid with points" in text
    db.session.refresh(membership)
    assert f">{membership.balance:,}<" in text
    assert text.count("/purchases/") == 2


def test_erased_customer_is_shown_under_a_pseudonym(client, make_merchant, make_member, make_user):
    from webapp.models.base import utcnow

    merchant = make_merchant()
    user = make_user(name="Secret Name")
    membership = make_member(merchant, user=user)
    user.erased_at = utcnow()
    db.session.commit()
    client.login(merchant.owner)
    listing = page_text(client.get(f"/business/{merchant.slug}/customers"))
    portrait = page_text(client.get(f"/business/{merchant.slug}/customers/{membership.id}"))
    for text in (listing, portrait):
        assert f"Erased customer #{user.id}" in text
        assert "Secret Name" not in text
        assert user.email not in text


# --------------------------------------------------------------------------- settings


def test_settings_rates_are_validated(client, make_merchant):
    merchant = make_merchant()
    client.login(merchant.owner)
    url = f"/business/{merchant.slug}/settings/rates"
    for cashback, share in (("101", "50"), ("5", "101"), ("-1", "50"), ("abc", "50"), ("2.555", "50"), ("5", "50.5")):
        response = client.post_form(url, {"cashback": cashback, "share": share})
        assert response.status_code == 422, (cashback, share)
        assert 'aria-invalid="true"' in page_text(response)
    db.session.refresh(merchant)
    assert (merchant.cashback_bp, merchant.max_points_share_pct) == (500, 50)

    response = client.post_form(url, {"cashback": "2,5", "share": "100"})
    assert response.status_code == 303
    db.session.refresh(merchant)
    assert (merchant.cashback_bp, merchant.max_points_share_pct) == (250, 100)


def test_settings_htmx_save_answers_with_the_section(client, make_merchant):
    merchant = make_merchant()
    client.login(merchant.owner)
    response = client.post_form(
        f"/business/{merchant.slug}/settings/rates", {"cashback": "7", "share": "20"}, htmx=True
    )
    assert response.status_code == 200
    text = page_text(response)
    assert text.lstrip().startswith('<section class="card" id="settings-rates"')
    assert "are saved" in text
    db.session.refresh(merchant)
    assert merchant.cashback_bp == 700


def _items(merchant):
    from webapp.services import price_items

    db.session.expire_all()
    return [(item.name, item.price, item.category) for item in price_items.items_of(db.session, merchant)]


def test_price_list_is_saved_in_minor_units(client, make_merchant):
    merchant = make_merchant()
    client.login(merchant.owner)
    url = f"/business/{merchant.slug}/settings/prices"
    response = client.post_form(url, {
        "item_name": ["Haircut", "Beard trim", "", "Old item"],
        "item_price": ["4500", "1 200,50", "", "10"],
        "remove": ["3"],
    })
    assert response.status_code == 303
    assert _items(merchant) == [("Haircut", 450000, ""), ("Beard trim", 120050, "")]
    text = page_text(client.get(f"/business/{merchant.slug}/settings"))
    assert 'value="4500.00"' in text and 'value="Beard trim"' in text

    # A row without a name, or a price that is not a number, is refused; nothing changes.
    for names, prices in ((["", "Tea"], ["100", "abc"]), (["Tea"], ["-5"])):
        response = client.post_form(url, {"item_name": names, "item_price": prices})
        assert response.status_code == 422
    assert len(_items(merchant)) == 2

    # "More rows" only re-renders the form with blank rows; it does not save.
    response = client.post_form(url, {"item_name": ["Haircut"], "item_price": ["1"], "action": "more"})
    assert response.status_code == 200
    assert page_text(response).count('name="item_name"') == 4
    assert _items(merchant)[0][1] == 450000


def test_profile_is_saved_and_validated(client, make_merchant):
    merchant = make_merchant()
    slug = merchant.slug
    client.login(merchant.owner)
    url = f"/business/{slug}/settings/profile"
    response = client.post_form(url, {"name": "", "category": "cafe"})
    assert response.status_code == 422
    response = client.post_form(url, {"name": "Renamed", "category": "no-such"})
    assert response.status_code == 422
    response = client.post_form(url, {
        "name": "Renamed Café", "category": "bakery", "description": "Croissants",
        "address": "5 Dostyk", "phone": "+7 700", "opening_hours": "8-20",
    })
    assert response.status_code == 303
    db.session.refresh(merchant)
    assert (merchant.name, merchant.category, merchant.address) == ("Renamed Café", "bakery", "5 Dostyk")
    assert merchant.slug == slug  # printed QR codes keep working


# --------------------------------------------------------------------------- staff


def _invitation_link(app) -> str:
    message = app.extensions["mailman"].outbox[-1]
    return re.search(r"http://localhost(/business/invitations/\S+)", message.body).group(1)


def test_invite_accept_makes_a_cashier(app, client, make_user, make_merchant):
    merchant = make_merchant()
    invited = make_user(name="New Cashier", email="cashier@example.com")
    client.login(merchant.owner)
    response = client.post_form(f"/business/{merchant.slug}/staff/invite", {"email": "Cashier@Example.com"})
    assert response.status_code == 303
    message = app.extensions["mailman"].outbox[-1]
    assert message.to == ["cashier@example.com"]
    assert merchant.name in message.subject
    link = _invitation_link(app)
    invitation = db.session.scalar(select(StaffInvitation).where(StaffInvitation.merchant_id == merchant.id))
    assert link.rsplit("/", 1)[1] not in invitation.token_hash  # only the hash is stored
    assert "cashier@example.com" in page_text(client.get(f"/business/{merchant.slug}/staff"))

    # Someone else signed in cannot use the link.
    other = make_user(email="intruder@example.com")
    client.post_form("/auth/logout")
    client.login(other)
    assert "Sign out and sign in with the invited address" in page_text(client.get(link))
    assert client.post_form(link).status_code == 403
    assert db.session.scalar(select(StaffRole).where(StaffRole.user_id == other.id)) is None

    client.post_form("/auth/logout")
    client.login(invited)
    assert "Accept and join as a cashier" in page_text(client.get(link))
    response = client.post_form(link)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/business/{merchant.slug}/till")
    role = db.session.scalar(
        select(StaffRole).where(StaffRole.user_id == invited.id, StaffRole.merchant_id == merchant.id)
    )
    assert role.role == "cashier"
    # The link works once; the new cashier still cannot open owner pages.
    assert client.get(link).status_code == 404
    assert client.get(f"/business/{merchant.slug}/dashboard").status_code == 404


def test_invitation_errors_revoke_and_removal(app, client, make_user, make_merchant):
    cashier = make_user(email="existing@example.com")
    merchant = make_merchant(cashiers=[cashier])
    client.login(merchant.owner)
    staff_url = f"/business/{merchant.slug}/staff"
    assert client.post_form(f"{staff_url}/invite", {"email": "not an address"}).status_code == 422
    assert client.post_form(f"{staff_url}/invite", {"email": "existing@example.com"}).status_code == 422

    client.post_form(f"{staff_url}/invite", {"email": "later@example.com"})
    link = _invitation_link(app)
    invitation = db.session.scalar(
        select(StaffInvitation).where(StaffInvitation.email == "later@example.com")
    )
    assert client.post_form(f"{staff_url}/invitations/{invitation.id}/revoke").status_code == 303
    assert client.get(link).status_code == 404

    roles = {r.user_id: r for r in db.session.scalars(select(StaffRole).where(StaffRole.merchant_id == merchant.id))}
    owner_role, cashier_role = roles[merchant.owner.id], roles[cashier.id]
    # The last owner stays; a cashier can be removed.
    assert client.post_form(f"{staff_url}/{owner_role.id}/remove").status_code == 409
    assert client.post_form(f"{staff_url}/{cashier_role.id}/remove").status_code == 303
    assert db.session.scalar(select(StaffRole).where(StaffRole.user_id == cashier.id)) is None

    # Another merchant's invitations and staff are out of reach.
    other = make_merchant(cashiers=[make_user()])
    other_role = db.session.scalar(
        select(StaffRole).where(StaffRole.merchant_id == other.id, StaffRole.role == "cashier")
    )
    assert client.post_form(f"{staff_url}/{other_role.id}/remove").status_code == 404
    assert db.session.get(StaffRole, other_role.id) is not None


@pytest.mark.parametrize("path", ["/business/invitations/not-a-token", "/business/invitations/" + "x" * 300])
def test_unknown_invitation_is_404(client, path):
    assert client.get(path).status_code == 404

"""Navigation shows each role only what it may open, and staff land where their work is."""

from __future__ import annotations

import re

import pytest

from tests.core.test_cashier import sign_in
from tests.kit import enable_plugins


@pytest.fixture
def app_overrides():
    return {"PLUGINS": ["plugins.news", "plugins.surveys", "plugins.gamification"],
            "RATELIMIT_ENABLED": False}


@pytest.fixture
def shop(make_user, make_merchant):
    cashier = make_user(name="Carla Cashier")
    merchant = make_merchant(cashiers=[cashier])
    merchant.cashier = cashier
    for name in ("news", "surveys", "gamification"):
        enable_plugins(merchant, name)
    return merchant


def subnav_links(page: str) -> list[str]:
    nav = page.split('id="staff-subnav"', 1)[1].split("</nav>", 1)[0]
    return re.findall(r'href="([^"]+)"', nav)


def sign_in_landing(client, user, **query) -> str:
    from tests.core.test_cashier import post_form

    post_form(client, "/auth/logout")
    url = "/auth/login" + (f"?next={query['next']}" if "next" in query else "")
    response = post_form(client, url, {"email": user.email, "password": "correct horse battery",
                                       "next": query.get("next", "")})
    assert response.status_code == 303
    return response.headers["Location"]


def test_the_cashier_sees_only_links_the_cashier_can_open(client, shop):
    sign_in(client, shop.cashier)
    links = subnav_links(client.get(f"/business/{shop.slug}/till").get_data(as_text=True))
    assert links == [f"/business/{shop.slug}/till"]  # surveys, news, levels are the owner's
    for url in links:
        assert client.get(url).status_code == 200


def test_the_owner_sees_every_page_and_each_opens(client, shop):
    sign_in(client, shop.owner)
    links = subnav_links(client.get(f"/business/{shop.slug}/dashboard").get_data(as_text=True))
    assert f"/business/{shop.slug}/surveys/" in links and f"/business/{shop.slug}/customers" in links
    for url in links:
        assert client.get(url).status_code == 200, url


def test_staff_land_on_their_till_or_dashboard_and_others_where_they_belong(
    client, shop, make_user, make_merchant, network
):
    assert sign_in_landing(client, shop.cashier) == f"/business/{shop.slug}/till"
    assert sign_in_landing(client, shop.owner) == f"/business/{shop.slug}/dashboard"
    make_merchant(cashiers=[shop.cashier])  # a second shop for the same cashier
    assert sign_in_landing(client, shop.cashier) == "/business/"
    assert sign_in_landing(client, network.operator) == "/operator/"
    assert sign_in_landing(client, make_user()) == "/wallet/"
    assert sign_in_landing(client, shop.cashier, next="/account/") == "/account/"


def test_a_cashier_is_not_offered_to_register_a_business(client, shop, make_user):
    sign_in(client, shop.cashier)
    page = client.get("/business/").get_data(as_text=True)
    assert "Register a business" not in page and f"/business/{shop.slug}/till" in page
    sign_in(client, shop.owner)
    assert "Register a business" in client.get("/business/").get_data(as_text=True)
    sign_in(client, make_user())
    assert "Register a business" in client.get("/business/").get_data(as_text=True)


def test_links_beyond_the_first_five_fold_into_more(client, shop):
    sign_in(client, shop.owner)
    page = client.get(f"/business/{shop.slug}/dashboard").get_data(as_text=True)
    nav = page.split('id="staff-subnav"', 1)[1].split("</nav>", 1)[0]
    assert len(subnav_links(page)) > 6
    bar, more = nav.split('<details class="subnav-more">', 1)
    assert len(re.findall(r'href="', bar)) == 5  # the bar keeps five links and wraps on a phone
    assert "<summary>More</summary>" in more and len(re.findall(r'href="', more)) == len(subnav_links(page)) - 5
    # The page being shown is marked inside the menu too.
    settings = client.get(f"/business/{shop.slug}/settings").get_data(as_text=True)
    menu = settings.split('<details class="subnav-more">', 1)[1].split("</details>", 1)[0]
    assert f'href="/business/{shop.slug}/settings" aria-current="page"' in menu

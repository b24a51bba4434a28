"""Every concierge page renders for the people allowed to see it: the e-card's and the wallet card's
ask box (htmx attributes, no-JavaScript fallback), the staff list, thread, topics, FAQ and dashboard."""

from __future__ import annotations

from plugins.concierge import services
from webapp.extensions import db


def test_the_ask_box_is_on_the_e_card_and_the_wallet_card(client, shop, make_member):
    services.save_topic(db.session, shop, "Orders", None)
    page = client.get(f"/m/{shop.slug}").get_data(as_text=True)
    assert 'hx-trigger="input changed delay:300ms"' in page
    assert f'hx-get="/m/{shop.slug}/ask/suggest?box=page-{shop.id}"' in page
    assert 'name="email"' in page  # a guest gives an e-mail
    assert f'formaction="/m/{shop.slug}/ask"' in page  # "Find answers" works without JavaScript
    member = make_member(shop)
    services.ask(db.session, shop, services.Asker(user=member.user), "Gluten-free bread?")
    client.login(member.user)
    card = client.get(f"/wallet/cards/{member.id}").get_data(as_text=True)
    assert "Gluten-free bread?" in card and 'name="email"' not in card
    assert f"box=wallet-{shop.id}" in card


def test_staff_pages_render(client, shop, make_member, cashier):
    member = make_member(shop)
    question = services.ask(
        db.session, shop, services.Asker(user=member.user), "Hi <script>x</script>"
    )
    services.reply(db.session, shop, question, shop.owner, "Hello")
    services.save_faq(db.session, shop, "Hours?", "9-21", "en")
    client.login(shop.owner)
    for tail in (
        "",
        "?status=answered",
        "?status=closed",
        "?status=bogus",
        str(question.id),
        "topics",
        "faq",
        "faq/new",
    ):
        response = client.get(f"/business/{shop.slug}/questions/{tail}")
        assert response.status_code == 200, (
            tail,
            response.status,
            response.headers,
            response.get_data(as_text=True)[:300],
        )
        assert "<script>x</script>" not in response.get_data(as_text=True)
    dashboard = client.get(f"/business/{shop.slug}/dashboard").get_data(as_text=True)
    assert "Time to first answer (median)" in dashboard
    client.post_form("/auth/logout")
    client.login(cashier)
    assert client.get(f"/business/{shop.slug}/questions/").status_code == 200

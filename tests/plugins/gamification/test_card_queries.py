"""The wallet card slots and the referrals panel send a fixed number of statements, whatever
the member's badges, friends or rewards (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import event

from plugins.gamification import hooks as gamification_hooks
from plugins.referrals import hooks as referral_hooks
from plugins.referrals import services as referral_services
from tests.plugins.gamification.test_levels import setup_levels
from tests.plugins.loyalty_kit import buy, join
from webapp.extensions import db


def _statements(render) -> tuple[int, str]:
    """(statements sent, HTML) of the third call: the first two fill the per-transaction caches
    and mark a level-up seen (a write the card makes once)."""
    render()
    render()
    counted: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().upper().startswith("BEGIN"):
            counted.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        html = render()
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    return len(counted), str(html)


def test_card_slots_send_the_same_statements_for_a_new_and_a_busy_member(app, make_merchant, make_user):
    cafe = make_merchant(cashback_bp=500)
    setup_levels(cafe, "visits")  # gamification and referrals on
    ann = join(cafe, make_user(name="Ann Lee"))
    new = join(cafe, make_user(name="Cleo New"))
    friends = [join(cafe, make_user(name=name), ref=referral_services.ensure_code(db.session, ann))
               for name in ("Bob Stone", "Dan Vale")]
    for _ in range(10):  # first purchase, tenth visit; Ann climbs levels
        buy(cafe, ann, amount=1_000)
    for friend in friends:
        buy(cafe, friend, amount=50_000)
    referral_services.ensure_code(db.session, new)
    db.session.commit()

    counts = {}
    with app.test_request_context("/wallet/"):
        for member in (ann, new):
            for name, hook in (("gamification", gamification_hooks), ("referrals", referral_hooks)):
                counts[(name, member.id)], html = _statements(
                    lambda hook=hook, member=member: hook.neighbourly_tpl_wallet_card(merchant=cafe, membership=member)
                )
                if member is ann and name == "gamification":
                    assert "Tenth visit" in html and "First purchase" in html and "Your level: VIP" in html
                if member is ann and name == "referrals":
                    assert "Friends you brought: Bob, Dan" in html
                if member is new and name == "referrals":
                    assert "No friends yet" in html
        panel, html = _statements(lambda: referral_hooks.neighbourly_collect_dashboard_panels(merchant=cafe)[0].html)
        assert "made a purchase" in html

    # Gamification: the levels with the member's status, then the badges. Referrals: one statement
    # for the code, friends and points earned; one for the whole dashboard panel.
    assert counts[("gamification", ann.id)] == counts[("gamification", new.id)] == 2
    assert counts[("referrals", ann.id)] == counts[("referrals", new.id)] == 1
    assert panel == 1

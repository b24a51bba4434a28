"""The pages: owner screens, till, receipts, wallet, gift links, rate limits, CSV/PDF, isolation."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from plugins.cross_marketing import services
from plugins.cross_marketing.models import Certificate, Offer, Partnership
from tests.conftest import form_status
from tests.kit import enable_plugins
from tests.plugins.cross_marketing.conftest import buy
from webapp.extensions import db, limiter
from webapp.services import codes


@pytest.fixture
def app_overrides():
    return {
        "PLUGINS": ["plugins.news", "plugins.cross_marketing"],
        "CROSS_MARKETING_LOOKUP_LIMITS": "3 per minute",
    }


def held(user_id: int) -> list[Certificate]:
    return list(db.session.scalars(select(Certificate).where(Certificate.holder_id == user_id)))


def test_owner_creates_an_offer_and_invites_a_neighbour_who_accepts(client, make_merchant):
    cafe, salon = make_merchant(name="Café Lipa"), make_merchant(name="Salon Aru")
    enable_plugins(cafe, "cross_marketing")
    enable_plugins(salon, "cross_marketing")
    client.login(cafe.owner)
    base = f"/business/{cafe.slug}/certificates"
    bad = client.post_form(base + "/offers", {"face_value": "-5", "validity_days": "0"}, htmx=True)
    assert form_status(bad) == 422
    assert 'aria-invalid="true"' in bad.get_data(as_text=True)
    ok = client.post_form(base + "/offers", {
        "face_value": "500", "validity_days": "30", "total_cap": "100", "fee": "50",
        "message": "<b>Coffee</b> on us", "remainder_policy": "kept",
    })
    assert ok.status_code == 303
    offer = db.session.scalars(select(Offer)).one()
    assert (offer.face_value, offer.fee, offer.total_cap, offer.remainder_policy) == (50_000, 5_000, 100, "kept")
    page = client.get(base + "/").get_data(as_text=True)
    assert "Salon Aru" in page and "<b>Coffee</b>" not in page
    assert client.post_form(f"{base}/offers/{offer.id}/invite", {"distributor_id": str(salon.id)}).status_code == 303
    partnership = db.session.scalars(select(Partnership)).one()
    assert partnership.status == "invited"

    client.login(salon.owner)
    salon_page = client.get(f"/business/{salon.slug}/certificates/").get_data(as_text=True)
    assert "Café Lipa invites you" in salon_page
    answer = client.post_form(
        f"/business/{salon.slug}/certificates/partnerships/{partnership.id}/answer",
        {"answer": "accept", "rule_min_purchase": "3000", "max_per_day": "10"},
    )
    assert answer.status_code == 303
    db.session.refresh(partnership)
    assert (partnership.status, partnership.min_purchase, partnership.max_per_day) == ("active", 300_000, 10)


def test_other_merchants_get_404_for_offers_and_partnerships(client, street, make_merchant):
    outsider = make_merchant(name="Outsider")
    enable_plugins(outsider, "cross_marketing")
    client.login(outsider.owner)
    base = f"/business/{outsider.slug}/certificates"
    assert client.post_form(f"{base}/offers/{street.offer.id}/invite", {"distributor_id": str(outsider.id)}).status_code == 404
    for path in ("answer", "rule", "status"):
        response = client.post_form(f"{base}/partnerships/{street.partnership.id}/{path}", {"action": "end", "answer": "decline"})
        assert response.status_code == 404, path
    assert db.session.get(Partnership, street.partnership.id).status == "active"
    # Someone else's business pages answer 404 too.
    assert client.get(f"/business/{street.cafe.slug}/certificates/").status_code == 404


def test_till_offers_the_held_certificate_and_the_receipts_say_what_happened(client, street, make_member):
    member = make_member(street.salon)
    client.login(street.salon.owner)
    page = client.get(f"/business/{street.salon.slug}/till?member={member.id}")
    assert page.status_code == 200
    response = client.post_form(f"/business/{street.salon.slug}/till/purchase", {
        "membership_id": str(member.id), "amount": "4500", "idempotency_key": uuid.uuid4().hex,
    })
    receipt = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Certificate" in receipt and "at Café Lipa, valid until" in receipt
    [certificate] = held(member.user_id)
    services.attach(db.session, member.user_id, certificate.id)

    at_cafe = make_member(street.cafe, user=member.user)
    client.login(street.cafe.owner)
    till = client.get(f"/business/{street.cafe.slug}/till?member={at_cafe.id}").get_data(as_text=True)
    assert "chose to use a certificate on this purchase" in till
    assert 'name="opt_certificate"' in till and f'value="{certificate.id}" selected' in till
    paid = client.post_form(f"/business/{street.cafe.slug}/till/purchase", {
        "membership_id": str(at_cafe.id), "amount": "2000", "idempotency_key": uuid.uuid4().hex,
        "opt_certificate_id": str(certificate.id),
    })
    text = paid.get_data(as_text=True)
    assert paid.status_code == 200 and "Certificate from Salon Aru" in text
    db.session.refresh(certificate)
    assert certificate.status == "redeemed"
    again = client.post_form(f"/business/{street.cafe.slug}/till/purchase", {
        "membership_id": str(at_cafe.id), "amount": "2000", "idempotency_key": uuid.uuid4().hex,
        "opt_certificate": services.unseal(certificate.code_sealed),
    })
    assert again.status_code == 422 and "already been used" in again.get_data(as_text=True)
    mistyped = client.post_form(f"/business/{street.cafe.slug}/till/purchase", {
        "membership_id": str(at_cafe.id), "amount": "2000", "idempotency_key": uuid.uuid4().hex,
        "opt_certificate": "0000-0000-0000-0000-1",
    })
    assert mistyped.status_code == 422 and "mistyped" in mistyped.get_data(as_text=True)


def test_wallet_shows_the_certificate_and_a_friend_claims_the_gift(client, street, make_member, make_user):
    member = make_member(street.salon)
    buy(street.salon, member)
    [certificate] = held(member.user_id)
    code = codes.group(services.unseal(certificate.code_sealed))
    client.login(member.user)
    wallet = client.get("/wallet/").get_data(as_text=True)
    assert "1 certificate waiting, ₸" in wallet  # the card's summary links to the certificates
    card = client.get(f"/wallet/cards/{member.id}").get_data(as_text=True)
    assert "at Café Lipa" in card and code in card
    page = client.get(f"/certificates/{certificate.id}").get_data(as_text=True)
    assert "<svg" in page and code in page
    gift = client.post_form(f"/certificates/{certificate.id}/gift", {})
    link = gift.get_data(as_text=True).split('id="cm-gift-link" type="text" readonly value="')[1].split('"')[0]
    path = link.replace("http://localhost", "")

    friend = make_user(name="Friend")
    client.post_form("/auth/logout", {})
    assert client.get(path).status_code == 302  # sign in first
    client.login(friend)
    assert "Put it in my wallet" in client.get(path).get_data(as_text=True)
    assert client.post_form(path, {}).status_code == 303
    assert client.post_form(path, {}).status_code == 404
    db.session.refresh(certificate)
    assert certificate.holder_id == friend.id
    assert "at Café Lipa" in client.get("/certificates/").get_data(as_text=True)
    client.login(member.user)
    assert client.get(f"/certificates/{certificate.id}").status_code == 404


def test_failed_code_lookups_are_rate_limited_per_account_and_ip(client, street, make_member, make_user):
    limiter.reset()
    member = make_member(street.salon)
    buy(street.salon, member)
    [certificate] = held(member.user_id)
    own = services.unseal(certificate.code_sealed)
    stranger = make_user(name="Guesser")
    client.login(stranger)
    # Unknown and someone else's codes answer alike.
    unknown = codes.generate(16)
    assert client.get(f"/certificates/c/{unknown}").status_code == 404
    assert client.get(f"/certificates/c/{own}").status_code == 404
    assert client.get(f"/certificates/c/{codes.generate(16)}").status_code == 404
    assert client.get(f"/certificates/c/{codes.generate(16)}").status_code == 429
    # The same address is limited for another account too: the holder must wait as well.
    client.login(member.user)
    assert client.get(f"/certificates/c/{own}").status_code == 429
    limiter.reset()
    assert client.get(f"/certificates/c/{own}").status_code == 303


def test_economics_panel_settlement_csv_and_pdf(client, street, make_member):
    street.offer.fee = 2_500
    db.session.commit()
    member = make_member(street.salon)
    buy(street.salon, member)
    [certificate] = held(member.user_id)
    buy(street.cafe, make_member(street.cafe, user=member.user), amount=90_000, certificate_id=str(certificate.id))
    month = services.utcnow().strftime("%Y-%m")

    client.login(street.cafe.owner)
    dashboard = client.get(f"/business/{street.cafe.slug}/dashboard").get_data(as_text=True)
    assert "Neighbourhood certificates" in dashboard and 'class="cm-redeemed-count">1<' in dashboard
    base = f"/business/{street.cafe.slug}/certificates/settlement.csv?month={month}"
    csv_text = client.get(base).get_data(as_text=True).removeprefix("\ufeff")  # for people: units, headers
    assert csv_text.startswith("Month,Neighbour,Role,Certificates redeemed,Value used,Fees,Amount,Currency")
    assert "Salon Aru,issuer,1,500,25,-25,KZT" in csv_text and "Net,,,,,-25,KZT" in csv_text
    client.post_form("/account/locale", {"locale": "ru"})
    russian = client.get(base).get_data(as_text=True)
    assert russian.startswith("\ufeffМесяц;")  # the byte order mark lets spreadsheets read Cyrillic and "Salon Aru;issuer;1;500;25;-25;KZT" in russian
    machine = client.get(base + "&format=machine").get_data(as_text=True)  # for programs: minor units
    assert machine.startswith("month,counterpart,role,redeemed,value_used_minor,fees_minor,amount_minor,currency")
    assert "Salon Aru,issuer,1,50000,2500,-2500,KZT" in machine and "NET,,,,,-2500" in machine
    pdf = client.get(f"/business/{street.cafe.slug}/certificates/settlement.pdf?month={month}")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    economics = client.get(f"/business/{street.cafe.slug}/certificates/economics").get_data(as_text=True)
    assert "<svg" in economics and "Salon Aru" in economics
    network = client.get(f"/business/{street.cafe.slug}/certificates/network").get_data(as_text=True)
    assert "Salon Aru" in network and "Café Lipa" in network

    client.login(street.salon.owner)
    salon_dashboard = client.get(f"/business/{street.salon.slug}/dashboard").get_data(as_text=True)
    assert 'class="cm-redeemed-count">1<' in salon_dashboard
    salon_csv = client.get(f"/business/{street.salon.slug}/certificates/settlement.csv?month={month}&format=machine").get_data(as_text=True)
    assert "Café Lipa,distributor,1,50000,2500,2500,KZT" in salon_csv


def test_customer_data_export_and_erasure(client, street, make_member, app):
    from webapp.plugins import registry

    member = make_member(street.salon)
    buy(street.salon, member)
    sections = registry().pm.hook.neighbourly_collect_customer_data(user=member.user)
    [mine] = [s for s in sections if s and s.source == "cross_marketing"]
    assert mine.data[0]["issuer"] == "Café Lipa"
    registry().pm.hook.neighbourly_customer_erased(user=member.user, session=db.session)
    db.session.commit()
    assert [c.status for c in held(member.user_id)] == ["voided"]


def test_customer_facts_name_the_certificate_received(street, make_member):
    from webapp.plugins import hooks_for, sorted_by_order

    member = make_member(street.salon)
    purchase = buy(street.salon, member)
    facts = sorted_by_order(hooks_for(street.salon).neighbourly_collect_customer_facts(
        merchant=street.salon, membership=member, purchase=purchase
    ))
    [fact] = [f for f in facts if f.key == "certificate"]
    assert "at Café Lipa, valid until" in fact.value and fact.source == "cross_marketing"
    from webapp.services.purchases import refund_purchase

    refund_purchase(db.session, street.salon, purchase.id, None)
    after_refund = hooks_for(street.salon).neighbourly_collect_customer_facts(
        merchant=street.salon, membership=member, purchase=purchase
    )
    assert [f for f in sorted_by_order(after_refund) if f.key == "certificate"] == []


def test_staff_of_the_accepting_shop_scanning_the_qr_open_the_till_with_the_code(client, street, make_member):
    member = make_member(street.salon)
    buy(street.salon, member)
    [certificate] = held(member.user_id)
    raw = services.unseal(certificate.code_sealed)
    qr_path = f"/certificates/c/{raw}"

    # The holder has no card at the café yet: the cashier is told to find them, with the code.
    client.login(street.cafe.owner)
    response = client.get(qr_path)
    assert response.status_code == 303
    assert response.headers["Location"] == f"/business/{street.cafe.slug}/till"
    assert codes.group(raw) in client.get(response.headers["Location"]).get_data(as_text=True)

    # With a card at the café: the till opens on the customer with the code filled in.
    card_here = make_member(street.cafe, user=member.user)
    response = client.get(qr_path)
    assert response.status_code == 303
    till = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"member={card_here.id}" in response.headers["Location"]
    assert 'name="opt_certificate" type="text"' in till and f'value="{codes.group(raw)}"' in till

    # Staff of the shop that handed it out do not accept it: the same 404 as for anyone else.
    client.post_form("/auth/logout", {})
    client.login(street.salon.owner)
    assert client.get(qr_path).status_code == 404
    # The holder still gets their own page.
    client.post_form("/auth/logout", {})
    client.login(member.user)
    response = client.get(qr_path)
    assert response.headers["Location"] == f"/certificates/{certificate.id}"


def test_a_gift_cancelled_by_the_givers_refund_says_why_in_the_friends_wallet(app, client, street, make_member, make_user):
    from webapp.services import memberships
    from webapp.services.purchases import refund_purchase

    giver = make_member(street.salon)
    purchase = buy(street.salon, giver)
    [certificate] = held(giver.user_id)
    token = services.create_gift_link(db.session, giver.user_id, certificate.id)
    friend = make_user(name="Friend")
    services.claim_gift(db.session, friend.id, token)
    memberships.grant_consent(db.session, friend, street.cafe, memberships.MARKETING, "test")
    db.session.commit()
    mail = app.extensions["mailman"]
    before = len(getattr(mail, "outbox", []))
    refund_purchase(db.session, street.salon, purchase.id, street.salon.owner.id)
    sent = mail.outbox[before:]
    assert [message.to for message in sent] == [[friend.email]]  # the friend agreed to hear from the café
    assert "was refunded, so the certificate was cancelled" in sent[0].body

    client.login(friend)
    page = client.get("/certificates/").get_data(as_text=True)
    assert "Cancelled" in page
    assert "The purchase at Salon Aru that this certificate came with was refunded" in page

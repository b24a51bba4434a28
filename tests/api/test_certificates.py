"""Plugin endpoints through ``neighbourly_register_api``: certificates looked up and redeemed at
the till over the POS API, exactly once, only where the plugin is on, only the key's own."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from plugins.cross_marketing import services
from plugins.cross_marketing.models import Certificate, CertificateEvent
from tests.api.test_api import assert_problem, auth, new_key
from tests.concurrency import race
from tests.kit import disable_plugins, enable_plugins
from tests.plugins.cross_marketing.conftest import Street, buy, make_offer, partner
from webapp.extensions import db
from webapp.models import Purchase
from webapp.services import codes

THREADS = 12


@pytest.fixture
def app_overrides():
    return {
        "PLUGINS": ["plugins.cross_marketing"],
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": THREADS + 2, "max_overflow": 0},
    }


@pytest.fixture
def street(make_merchant, make_user):
    cafe = make_merchant(name="Café Lipa")
    salon = make_merchant(name="Salon Aru")
    enable_plugins(cafe, "cross_marketing")
    enable_plugins(salon, "cross_marketing")
    offer = make_offer(cafe)
    return Street(cafe, salon, offer, partner(cafe, salon, offer))


def certificate_for(street, make_member):
    """A customer of the salon receives the café's certificate; returns (code, café membership)."""
    at_salon = make_member(street.salon)
    buy(street.salon, at_salon)
    certificate = db.session.scalar(select(Certificate).where(Certificate.holder_id == at_salon.user_id))
    at_cafe = make_member(street.cafe, user=at_salon.user)
    return codes.group(services.unseal(certificate.code_sealed)), at_cafe, certificate


def redeem(client, secret, code, membership_id, amount=200_000, key="redeem-1"):
    return client.post(
        "/api/v1/certificates/redeem",
        json={"code": code, "membership_id": membership_id, "amount": amount},
        headers=auth(secret, key),
    )


def test_lookup_shows_the_certificate_and_its_holder_here(client, street, make_member):
    code, at_cafe, certificate = certificate_for(street, make_member)
    secret = new_key(street.cafe)
    found = client.get(f"/api/v1/certificates/lookup?code={code}", headers=auth(secret))
    assert found.status_code == 200, found.get_data(as_text=True)
    body = found.get_json()
    assert body["id"] == certificate.id and body["membership_id"] == at_cafe.id
    assert (body["status"], body["face_value"], body["balance"]) == ("issued", 50_000, 50_000)
    assert body["usable"] is True and body["reason"] is None
    assert body["from_business"] == "Salon Aru" and body["code_last4"] == code.replace("-", "")[-4:]
    # The salon's key does not see the café's certificates; a made-up code is not found either.
    salon_secret = new_key(street.salon)
    assert_problem(client.get(f"/api/v1/certificates/lookup?code={code}", headers=auth(salon_secret)), 404, "not-found")
    made_up = codes.group(codes.generate(16))
    assert_problem(client.get(f"/api/v1/certificates/lookup?code={made_up}", headers=auth(secret)), 404, "not-found")
    assert_problem(client.get("/api/v1/certificates/lookup?code=", headers=auth(secret)), 422, "validation-failed")


def test_redeeming_records_one_sale_and_a_retry_replays_it(client, street, make_member):
    code, at_cafe, certificate = certificate_for(street, make_member)
    secret = new_key(street.cafe)
    first = redeem(client, secret, code, at_cafe.id)
    assert first.status_code == 201, first.get_data(as_text=True)
    body = first.get_json()
    assert body["certificate_id"] == certificate.id and body["value_used"] == 50_000
    assert body["purchase"]["amount_paid"] == 150_000
    again = redeem(client, secret, code, at_cafe.id)
    assert (again.status_code, again.get_data()) == (first.status_code, first.get_data())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert_problem(redeem(client, secret, code, at_cafe.id, amount=300_000), 409, "idempotency-conflict")
    used = redeem(client, secret, code, at_cafe.id, key="redeem-2")
    assert_problem(used, 422, "certificate-refused")
    assert "already been used" in used.get_json()["detail"]
    db.session.refresh(certificate)
    assert certificate.status == "redeemed" and certificate.redeemed_purchase_id == body["purchase"]["id"]
    looked = client.get(f"/api/v1/certificates/lookup?code={code}", headers=auth(secret)).get_json()
    assert looked["usable"] is False and "already been used" in looked["reason"]
    # The sale is an ordinary purchase: the core's refund gives the certificate back.
    refund = client.post(f"/api/v1/purchases/{body['purchase']['id']}/refund", headers=auth(secret, "refund-1"))
    assert refund.status_code == 200
    db.session.refresh(certificate)
    assert certificate.status == "issued"


def test_a_read_key_cannot_redeem_and_a_merchant_without_the_plugin_gets_404(client, street, make_member):
    code, at_cafe, _certificate = certificate_for(street, make_member)
    assert_problem(redeem(client, new_key(street.cafe, scope="read"), code, at_cafe.id), 403, "forbidden")
    secret = new_key(street.cafe)
    disable_plugins(street.cafe, "cross_marketing")
    assert_problem(client.get(f"/api/v1/certificates/lookup?code={code}", headers=auth(secret)), 404, "not-found")
    assert_problem(redeem(client, secret, code, at_cafe.id), 404, "not-found")
    assert db.session.scalar(select(func.count()).select_from(Purchase).where(Purchase.merchant_id == street.cafe.id)) == 0


def test_another_merchants_membership_answers_404_and_records_nothing(client, street, make_member):
    code, _at_cafe, certificate = certificate_for(street, make_member)
    someone_at_salon = make_member(street.salon)
    secret = new_key(street.cafe)
    assert_problem(redeem(client, secret, code, someone_at_salon.id), 404, "not-found")
    db.session.refresh(certificate)
    assert certificate.status == "issued"


@pytest.mark.slow
def test_concurrent_redemptions_use_the_certificate_once(app, street, make_member, patient_sqlite):
    code, at_cafe, certificate = certificate_for(street, make_member)
    secret = new_key(street.cafe)
    body = json.dumps({"code": code, "membership_id": at_cafe.id, "amount": 200_000})
    db.session.commit()  # read nothing of the test's objects in the threads: that would lock SQLite

    def post(thread, round_number):
        # Half the tills retry one key, the other half each try their own key.
        key = "same" if thread % 2 == 0 else f"own-{thread}"
        response = app.test_client().post(
            "/api/v1/certificates/redeem", data=body, content_type="application/json",
            headers=auth(secret, key),
        )
        return key, response.status_code, response.get_data()

    outcomes = race(app, THREADS, post)
    assert not [o for o in outcomes if isinstance(o, Exception)], [repr(o) for o in outcomes if isinstance(o, Exception)]
    successes = {(key, body) for key, status, body in outcomes if status == 201}
    assert len({body for _key, body in successes}) == 1, outcomes
    assert all(status in (201, 422) for _key, status, _body in outcomes), outcomes
    same = {(status, body) for key, status, body in outcomes if key == "same"}
    assert len(same) == 1, same  # every retry of one key got the same answer
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Purchase).where(Purchase.certificate_value_used > 0)) == 1
    assert db.session.scalar(
        select(func.count()).select_from(CertificateEvent).where(CertificateEvent.kind == "redeemed")
    ) == 1
    db.session.refresh(certificate)
    assert certificate.status == "redeemed"

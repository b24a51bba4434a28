"""Issuing, redeeming, gifting, refunds, caps, expiry and settlement of neighbourhood certificates."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from plugins.cross_marketing import services
from plugins.cross_marketing.models import Certificate, CertificateEvent, HolderCount, Offer
from tests.kit import enable_plugins
from tests.plugins.cross_marketing.conftest import buy, make_offer, partner
from webapp.errors import Conflict, NotFound, PurchaseDeclined
from webapp.extensions import db
from webapp.formatting import money
from webapp.models import Purchase
from webapp.plugins import hookimpl
from webapp.services import codes
from webapp.services.purchases import refund_purchase


def certificates_of(user_id: int) -> list[Certificate]:
    return list(db.session.scalars(select(Certificate).where(Certificate.holder_id == user_id)))


def code_of(certificate: Certificate) -> str:
    return services.unseal(certificate.code_sealed)


def test_a_purchase_at_the_distributor_issues_the_issuers_certificate(street, make_member):
    member = make_member(street.salon)
    purchase = buy(street.salon, member)
    [certificate] = certificates_of(member.user_id)
    assert certificate.issuer_id == street.cafe.id
    assert certificate.status == "issued"
    assert certificate.face_value == 50_000
    assert certificate.issued_purchase_id == purchase.id
    assert certificate.expires_at - purchase.created_at == timedelta(days=30)
    code = code_of(certificate)
    # Only a keyed hash and the last four symbols are stored in the clear.
    assert certificate.code_hash == codes.keyed_hash(code, "test-secret-key")
    assert code not in certificate.code_sealed and certificate.code_last4 == code[-4:]
    assert codes.is_valid(code, 16)
    events = db.session.scalars(select(CertificateEvent)).all()
    assert [(e.kind, e.count) for e in events] == [("issued", 1)]


def test_the_rule_minimum_and_inactive_partnerships_issue_nothing(street, make_member):
    services.set_rule(db.session, street.salon, street.partnership.id, {"rule_min_purchase": "5000"})
    member = make_member(street.salon)
    buy(street.salon, member, amount=499_999)
    assert certificates_of(member.user_id) == []
    buy(street.salon, member, amount=500_000)
    assert len(certificates_of(member.user_id)) == 1
    services.change_status(db.session, street.cafe, street.partnership.id, "pause")
    buy(street.salon, member, amount=900_000)
    assert len(certificates_of(member.user_id)) == 1
    services.change_status(db.session, street.salon, street.partnership.id, "resume")
    buy(street.salon, member, amount=900_000)
    assert len(certificates_of(member.user_id)) == 2
    services.change_status(db.session, street.salon, street.partnership.id, "end")
    buy(street.salon, member, amount=900_000)
    # Ending stops issuing but never invalidates what was issued.
    assert [c.status for c in certificates_of(member.user_id)] == ["issued", "issued"]


def test_a_purchase_at_the_issuer_redeems_a_typed_code_once(street, make_member):
    receiver = make_member(street.salon)
    buy(street.salon, receiver)
    [certificate] = certificates_of(receiver.user_id)
    at_cafe = make_member(street.cafe, user=receiver.user)
    typed = codes.group(code_of(certificate)).lower()  # case and dashes do not matter
    purchase = buy(street.cafe, at_cafe, amount=200_000, certificate=typed)
    assert purchase.certificate_value_used == 50_000
    assert purchase.amount_paid == 150_000
    db.session.refresh(certificate)
    assert certificate.status == "redeemed" and certificate.redeemed_purchase_id == purchase.id
    with pytest.raises(PurchaseDeclined, match="already been used"):
        buy(street.cafe, at_cafe, amount=200_000, certificate=typed)
    [redeemed] = db.session.scalars(select(CertificateEvent).where(CertificateEvent.kind == "redeemed")).all()
    assert (redeemed.value_used, redeemed.purchase_amount, redeemed.new_customer) == (50_000, 200_000, True)


def test_the_remainder_is_lost_or_kept_as_the_issuer_chose(street, make_member, make_merchant):
    kept_offer = make_offer(street.cafe, face_value="500", remainder_policy="kept")
    other_salon = make_merchant(name="Florist")
    enable_plugins(other_salon, "cross_marketing")
    partner(street.cafe, other_salon, kept_offer)
    member = make_member(other_salon)
    buy(other_salon, member)
    [certificate] = certificates_of(member.user_id)
    at_cafe = make_member(street.cafe, user=member.user)
    first = buy(street.cafe, at_cafe, amount=20_000, certificate_id=str(certificate.id))
    assert first.certificate_value_used == 20_000
    db.session.refresh(certificate)
    assert (certificate.status, certificate.balance) == ("issued", 30_000)
    second = buy(street.cafe, at_cafe, amount=100_000, certificate_id=str(certificate.id))
    assert second.certificate_value_used == 30_000
    db.session.refresh(certificate)
    assert (certificate.status, certificate.balance) == ("redeemed", 0)
    # The café's default offer loses the remainder.
    lost_member = make_member(street.salon)
    buy(street.salon, lost_member)
    [lost] = certificates_of(lost_member.user_id)
    buy(street.cafe, make_member(street.cafe, user=lost_member.user), amount=20_000, certificate_id=str(lost.id))
    db.session.refresh(lost)
    assert (lost.status, lost.balance) == ("redeemed", 0)


def test_refusals_are_clear_for_the_holder_and_alike_for_everyone_else(street, make_member, make_merchant):
    holder = make_member(street.salon)
    buy(street.salon, holder)
    [certificate] = certificates_of(holder.user_id)
    code = code_of(certificate)
    stranger = make_member(street.cafe)
    with pytest.raises(PurchaseDeclined) as foreign_holder:
        buy(street.cafe, stranger, certificate=code)
    unknown = codes.generate(16)
    with pytest.raises(PurchaseDeclined) as unknown_code:
        buy(street.cafe, stranger, certificate=unknown)
    assert foreign_holder.value.message == unknown_code.value.message
    # The holder at the wrong merchant learns where it is valid.
    holder_at_salon = holder
    with pytest.raises(PurchaseDeclined, match="Café Lipa"):
        buy(street.salon, holder_at_salon, certificate=code)
    # Expired
    certificate.expires_at = certificate.expires_at - timedelta(days=31)
    db.session.commit()
    with pytest.raises(PurchaseDeclined, match="expired"):
        buy(street.cafe, make_member(street.cafe, user=holder.user), certificate=code)


def test_every_single_typo_is_rejected_before_any_lookup(street, make_member, monkeypatch):
    holder = make_member(street.salon)
    buy(street.salon, holder)
    code = code_of(certificates_of(holder.user_id)[0])
    lookups = []
    real_hash = services.code_hash
    # Patched where the code functions live (the services package re-exports them).
    monkeypatch.setattr(services.base, "code_hash", lambda text: lookups.append(text) or real_hash(text))
    variants = set()
    for position in range(len(code) - 1):  # payload symbols; the check symbol is the last
        for symbol in codes.ALPHABET:
            if symbol != code[position]:
                variants.add(code[:position] + symbol + code[position + 1:])
    for position in range(len(code) - 1):
        if code[position] != code[position + 1]:
            variants.add(code[:position] + code[position + 1] + code[position] + code[position + 2:])
    assert len(variants) > 16 * 30
    for variant in variants:
        with pytest.raises(codes.InvalidCode):
            services.extract_code(variant)
    assert lookups == []
    assert services.extract_code(" " + codes.group(code).lower() + " ") == code


def test_refund_voids_unredeemed_certificates_and_restores_a_used_one(street, make_member):
    member = make_member(street.salon)
    first = buy(street.salon, member)
    second = buy(street.salon, member)
    first_cert, second_cert = sorted(certificates_of(member.user_id), key=lambda c: c.id)
    at_cafe = make_member(street.cafe, user=member.user)
    redeeming = buy(street.cafe, at_cafe, amount=80_000, certificate_id=str(second_cert.id))
    assert db.session.get(Offer, street.offer.id).issued_count == 2

    refund_purchase(db.session, street.salon, first.id, None)
    db.session.refresh(first_cert)
    assert first_cert.status == "voided"
    assert db.session.get(Offer, street.offer.id).issued_count == 1
    with pytest.raises(PurchaseDeclined, match="cancelled"):
        buy(street.cafe, at_cafe, certificate=code_of(first_cert))

    # A refunded purchase that used a certificate gives it back, ready to use again.
    refund_purchase(db.session, street.cafe, redeeming.id, None)
    db.session.refresh(second_cert)
    assert (second_cert.status, second_cert.balance, second_cert.redeemed_purchase_id) == ("issued", 50_000, None)
    # Refunding the purchase that issued an already-redeemed certificate leaves the redemption.
    again = buy(street.cafe, at_cafe, amount=80_000, certificate_id=str(second_cert.id))
    refund_purchase(db.session, street.salon, second.id, None)
    db.session.refresh(second_cert)
    assert second_cert.status == "redeemed" and second_cert.redeemed_purchase_id == again.id
    net = db.session.scalar(
        select(func.sum(CertificateEvent.count)).where(CertificateEvent.kind.in_(("redeemed", "restored")))
    )
    assert net == 1


def test_a_rolled_back_purchase_issues_nothing(street, make_member, app):
    member = make_member(street.salon)

    def explode(**kwargs):
        raise RuntimeError("a later plugin fails")

    pm = app.extensions["neighbourly"].pm
    # A throw-away plugin whose record hook fails after ours has issued the certificate.
    probe = type("Probe", (), {"neighbourly_purchase_recorded": hookimpl(trylast=True)(staticmethod(explode))})
    pm.register(probe, name="probe_fail")
    try:
        with pytest.raises(Exception, match="internal error"):
            buy(street.salon, member)
    finally:
        pm.unregister(name="probe_fail")
    assert certificates_of(member.user_id) == []
    assert db.session.get(Offer, street.offer.id).issued_count == 0
    assert db.session.scalar(select(func.count()).select_from(Purchase)) == 0


def test_per_customer_and_daily_caps(street, make_member):
    street.offer.per_customer_cap = 2
    db.session.commit()
    services.set_rule(db.session, street.salon, street.partnership.id, {"max_per_day": "3"})
    first, second = make_member(street.salon), make_member(street.salon)
    for _attempt in range(3):
        buy(street.salon, first)
    assert len(certificates_of(first.user_id)) == 2
    for _attempt in range(3):
        buy(street.salon, second)
    assert len(certificates_of(second.user_id)) == 1  # the day's third; the cap is reached
    counts = dict(db.session.execute(select(HolderCount.user_id, HolderCount.issued)).all())
    assert counts == {first.user_id: 2, second.user_id: 1}
    assert db.session.get(Offer, street.offer.id).issued_count == 3


def test_gift_by_link_moves_the_certificate_to_exactly_one_friend(street, make_member, make_user):
    member = make_member(street.salon)
    buy(street.salon, member)
    [certificate] = certificates_of(member.user_id)
    old_code = code_of(certificate)
    token = services.create_gift_link(db.session, member.user_id, certificate.id)
    with pytest.raises(Conflict):
        services.claim_gift(db.session, member.user_id, token)
    friend, latecomer = make_user(name="Friend"), make_user(name="Late")
    services.claim_gift(db.session, friend.id, token)
    with pytest.raises(NotFound):
        services.claim_gift(db.session, latecomer.id, token)
    db.session.refresh(certificate)
    assert certificate.holder_id == friend.id
    assert code_of(certificate) != old_code  # the giver saw the old code
    with pytest.raises(NotFound):
        services.holder_certificate(db.session, member.user_id, certificate.id)
    friend_at_cafe = make_member(street.cafe, user=friend)
    with pytest.raises(PurchaseDeclined):
        buy(street.cafe, make_member(street.cafe, user=member.user), certificate=old_code)
    purchase = buy(street.cafe, friend_at_cafe, certificate=code_of(certificate))
    assert purchase.certificate_value_used == 50_000


def test_attach_and_detach(street, make_member):
    member = make_member(street.salon)
    buy(street.salon, member)
    [certificate] = certificates_of(member.user_id)
    services.attach(db.session, member.user_id, certificate.id)
    assert certificate.status == "attached"
    with pytest.raises(Conflict):
        services.attach(db.session, member.user_id, certificate.id)
    services.detach(db.session, member.user_id, certificate.id)
    assert certificate.status == "issued"


def test_expiry_job_and_reminders(street, make_member, app):
    member = make_member(street.salon)
    buy(street.salon, member)
    buy(street.salon, member)
    week, day = sorted(certificates_of(member.user_id), key=lambda c: c.id)
    now = services.utcnow()
    week.expires_at = now + timedelta(days=6, hours=12)
    day.expires_at = now + timedelta(hours=20)
    db.session.commit()
    reminders = services.due_reminders(db.session, now)
    assert sorted(r.days for r in reminders) == [1, 7]
    assert services.due_reminders(db.session, now) == []  # each reminder once
    assert services.expire_certificates(db.session, now + timedelta(days=2)) == 1
    db.session.refresh(day)
    assert day.status == "expired"
    kinds = db.session.scalars(select(CertificateEvent.kind).where(CertificateEvent.kind == "expired")).all()
    assert kinds == ["expired"]


def test_reminder_emails_go_through_the_task_queue(street, make_member, app):
    from plugins.cross_marketing.reminders import send_reminders

    member = make_member(street.salon)
    buy(street.salon, member)
    [certificate] = certificates_of(member.user_id)
    certificate.expires_at = services.utcnow() + timedelta(hours=5)
    db.session.commit()
    mail = app.extensions["mailman"]
    before = len(getattr(mail, "outbox", []))
    assert send_reminders(db.session) == 1
    sent = mail.outbox[before:]
    assert len(sent) == 1 and "Café Lipa" in sent[0].subject and sent[0].to == [member.user.email]


def test_settlement_sums_equal_the_event_ledger(street, make_member, make_merchant):
    street.offer.fee = 5_000
    db.session.commit()
    used = []
    for amount in (60_000, 70_000, 80_000):
        member = make_member(street.salon)
        buy(street.salon, member)
        [certificate] = certificates_of(member.user_id)
        used.append(buy(street.cafe, make_member(street.cafe, user=member.user), amount=amount,
                        certificate_id=str(certificate.id)))
    refund_purchase(db.session, street.cafe, used[0].id, None)
    today = services.utcnow().date()
    cafe_statement = services.settlement(db.session, street.cafe, today.year, today.month)
    salon_statement = services.settlement(db.session, street.salon, today.year, today.month)
    ledger_fees = db.session.scalar(select(func.sum(CertificateEvent.fee)))
    ledger_count = db.session.scalar(
        select(func.sum(CertificateEvent.count)).where(CertificateEvent.kind.in_(("redeemed", "restored")))
    )
    assert ledger_fees == 10_000 and ledger_count == 2
    assert cafe_statement.net == -ledger_fees and salon_statement.net == ledger_fees
    assert sum(line.redeemed for line in cafe_statement.lines) == ledger_count
    [figures] = services.economics(db.session, street.cafe, months=1)
    month = figures.months[-1]
    assert (month.issued, month.redeemed, month.revenue, month.fees) == (3, 2, 150_000, 10_000)
    assert month.cost == 2 * 50_000 + 10_000 and month.new_customers == 2


def test_tenant_isolation_of_offers_and_partnerships(street, make_merchant):
    outsider = make_merchant(name="Outsider")
    with pytest.raises(NotFound):
        services.get_offer(db.session, outsider, street.offer.id)
    with pytest.raises(NotFound):
        services.get_partnership(db.session, outsider, street.partnership.id)
    with pytest.raises(NotFound):
        services.change_status(db.session, outsider, street.partnership.id, "end")
    # The issuer cannot answer or set the distributor's rule.
    with pytest.raises(NotFound):
        services.set_rule(db.session, street.cafe, street.partnership.id, {"rule_min_purchase": "1"})


def test_neighbours_in_another_network_cannot_be_invited(street, make_merchant, make_network):
    elsewhere = make_merchant(name="Far Away", in_network=make_network())
    from webapp.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        services.invite(db.session, street.cafe, street.offer.id, elsewhere.id)


def test_reminders_are_written_in_the_holders_language(street, make_member, make_user, app):
    """A holder without a language of their own reads the network's; money is written their way."""
    from plugins.cross_marketing.reminders import send_reminders

    street.salon.network.default_locale = "bg"
    db.session.commit()
    member = make_member(street.salon, user=make_user())
    buy(street.salon, member)
    [certificate] = certificates_of(member.user_id)
    certificate.expires_at = services.utcnow() + timedelta(hours=5)
    db.session.commit()
    mail = app.extensions["mailman"]
    before = len(getattr(mail, "outbox", []))
    assert send_reminders(db.session) == 1
    [sent] = mail.outbox[before:]
    assert sent.subject.startswith("Сертификатът ви в Café Lipa изтича на ")
    assert "Сертификатът ви изтича утре." in sent.body
    assert money(certificate.balance, street.salon.network.currency, "bg") in sent.body

"""The group deals' POS API: a till looks a voucher up and redeems it once, by its code."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from plugins.group_deals import services
from plugins.group_deals.models import Voucher
from tests.api.test_api import auth, new_key
from tests.kit import disable_plugins, enable_plugins
from tests.plugins.group_deals.conftest import AFTER, NOW, make_deal
from webapp.extensions import db
from webapp.services import codes


def _holder(shop, make_member):
    member = make_member(shop)
    deal = make_deal(shop, tiers=((2, 9000), (3, 8000)))
    services.join(db.session, shop, deal.id, member.user_id, 2, "current", NOW)
    for _ in range(2):
        services.join(db.session, shop, deal.id, make_member(shop).user_id, 1, "current", NOW)
    services.close_deal(db.session, deal.id, AFTER)
    voucher = db.session.scalar(select(Voucher).where(Voucher.user_id == member.user_id))
    return member, codes.group(services.voucher_code(voucher.nonce))


def test_a_till_looks_a_voucher_up_and_redeems_it_once(client, shop, make_member, make_merchant):
    member, code = _holder(shop, make_member)
    secret = new_key(shop)
    found = client.get("/api/v1/group-deals/vouchers/lookup", query_string={"code": code}, headers=auth(secret))
    assert found.status_code == 200, found.get_data(as_text=True)
    assert found.json["membership_id"] == member.id and found.json["usable"] is True
    assert found.json["discount"] == 2 * (10000 - 8000)

    body = {"code": code, "membership_id": member.id, "amount": 30_000}
    key = uuid.uuid4().hex
    sale = client.post("/api/v1/group-deals/vouchers/redeem", json=body, headers=auth(secret, key))
    assert sale.status_code == 201, sale.get_data(as_text=True)
    assert sale.json["discount"] == 4000 and sale.json["purchase"]["amount_paid"] == 26_000
    again = client.post("/api/v1/group-deals/vouchers/redeem", json=body, headers=auth(secret, key))
    assert (again.status_code, again.json) == (201, sale.json)
    assert again.headers["Idempotent-Replayed"] == "true"

    used = client.post("/api/v1/group-deals/vouchers/redeem", json=body, headers=auth(secret, uuid.uuid4().hex))
    assert used.status_code == 422 and used.mimetype == "application/problem+json"
    assert "already been used" in used.json["detail"]
    assert client.get("/api/v1/group-deals/vouchers/lookup", query_string={"code": code},
                      headers=auth(secret)).json["usable"] is False

    # Another business's key finds nothing, and without the plugin the endpoints are not there.
    other = make_merchant()
    enable_plugins(other, "group_deals")
    other_secret = new_key(other)
    assert client.get("/api/v1/group-deals/vouchers/lookup", query_string={"code": code},
                      headers=auth(other_secret)).status_code == 404
    disable_plugins(shop, "group_deals")
    assert client.get("/api/v1/group-deals/vouchers/lookup", query_string={"code": code},
                      headers=auth(secret)).status_code == 404

"""The wallet's statement count does not grow with the number of cards a customer holds."""

from sqlalchemy import event

from webapp.extensions import db


def _statements_for(client, path):
    db.session.expunge_all()  # requests share the test's session: start from fresh objects, as a request does
    counted = []
    listener = lambda *args: counted.append(1)  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    return len(counted)


def test_wallet_statements_are_the_same_for_two_and_five_cards(app, client, make_user, make_merchant, make_member):
    customer = make_user()
    merchants = [make_merchant() for _ in range(5)]
    for merchant in merchants[:2]:
        make_member(merchant, user=customer, points=10)
    client.login(customer)
    customer_id, merchant_ids = customer.id, [merchant.id for merchant in merchants]
    client.get("/wallet/")  # warm caches
    two = _statements_for(client, "/wallet/")
    from webapp.models import Merchant, User

    customer = db.session.get(User, customer_id)
    for merchant_id in merchant_ids[2:]:
        make_member(db.session.get(Merchant, merchant_id), user=customer, points=10)
    five = _statements_for(client, "/wallet/")
    assert five == two

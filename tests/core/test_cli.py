"""``flask network-create``: a fresh installation gets its street and operator from the command line."""

from __future__ import annotations

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import Network, User
from webapp.services.accounts import verify_password

PASSWORD = "a long operator passphrase"


def create(app, *args, password: str = PASSWORD):
    return app.test_cli_runner().invoke(
        args=["network-create", *args], env={"NEIGHBOURLY_OPERATOR_PASSWORD": password}
    )


def test_creates_the_network_and_its_operator_with_a_point_worth_one_unit(app):
    result = create(app, "Vitosha Street", "--currency", "bgn", "--locale", "ru",
                    "--operator-email", "Operator@Example.com", "--operator-name", "Maria")
    assert result.exit_code == 0, result.output
    network = db.session.scalar(select(Network).where(Network.slug == "vitosha-street"))
    assert network.currency == "BGN" and network.default_locale == "ru"
    assert network.point_value_minor == 100  # one lev
    operator = db.session.get(User, network.operator_id)
    assert operator.email == "operator@example.com" and operator.name == "Maria"
    assert verify_password(operator, PASSWORD)
    assert "/operator/vitosha-street/" in result.output


def test_an_existing_account_becomes_the_operator_and_the_point_value_can_be_set(app, make_user):
    user = make_user(name="Aset")
    result = create(app, "Abay Street", "--currency", "KZT", "--point-value", "0.50",
                    "--operator-email", user.email)
    assert result.exit_code == 0, result.output
    network = db.session.scalar(select(Network).where(Network.slug == "abay-street"))
    assert network.operator_id == user.id and network.point_value_minor == 50


def test_bad_input_is_refused_with_a_message_and_writes_nothing(app):
    cases = [
        (["Street", "--currency", "XYZ1", "--operator-email", "a@example.com"], "ISO 4217"),
        (["Street", "--currency", "EUR", "--point-value", "0", "--operator-email", "a@example.com"],
         "more than nothing"),
        (["Street", "--currency", "EUR", "--point-value", "0.001", "--operator-email", "a@example.com"],
         "digits after the decimal point"),
        (["Street", "--currency", "EUR", "--locale", "de", "--operator-email", "a@example.com"], "en, ru, kk, bg"),
        (["Street", "--currency", "EUR", "--operator-email", "a@example.com"], "password"),
    ]
    for args, message in cases:
        result = create(app, *args, password="short" if message == "password" else PASSWORD)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output, (args, result.output)
    assert db.session.scalar(select(Network).where(Network.slug == "street")) is None
    assert db.session.scalar(select(User).where(User.email == "a@example.com")) is None
    assert create(app, "Street", "--currency", "EUR", "--operator-email", "a@example.com").exit_code == 0
    again = create(app, "Street", "--currency", "EUR", "--operator-email", "a@example.com")
    assert again.exit_code == 1 and "already exists" in again.output

"""E-mail leaves through the task queue to a real SMTP server; by default it is written to files."""

import re

import pytest

from tests.smtp import SMTPSink
from webapp.extensions import db
from webapp.services import accounts


@pytest.fixture
def smtp():
    with SMTPSink() as sink:
        yield sink


@pytest.fixture
def app_overrides(smtp):
    return {"MAIL_BACKEND": "smtp", "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": smtp.port}


def test_password_reset_mail_arrives_and_link_works_once(app, client, smtp, make_user):
    user = make_user(name="Aigerim Sadykova")
    response = client.post_form("/auth/reset", {"email": user.email})
    assert response.status_code == 200
    assert len(smtp.messages) == 1
    message = smtp.messages[0]
    assert message["To"] == user.email
    assert "Reset your Neighbourly password" in message["Subject"]
    body = message.get_body(("plain",)).get_content()
    assert "Aigerim" in body
    link = re.search(r"http://localhost(/auth/reset/\S+)", body).group(1)

    response = client.post_form(link, {"password": "a brand new secret"})
    assert response.status_code == 303
    assert accounts.authenticate(db.session, user.email, "a brand new secret") is not None
    # The link is single-use.
    response = client.post_form(link, {"password": "another new secret"})
    assert response.status_code == 404
    assert accounts.authenticate(db.session, user.email, "another new secret") is None


def test_reset_request_for_unknown_address_sends_nothing_and_looks_the_same(app, client, smtp, make_user):
    known = make_user()
    for address in ("nobody@example.com", known.email):
        response = client.post_form("/auth/reset", {"email": address})
        assert response.status_code == 200
        assert "If an account exists" in response.get_data(as_text=True)
    assert [m["To"] for m in smtp.messages] == [known.email]


def test_file_backend_writes_mail_to_the_instance_folder(tmp_path, backend, database_url):
    from tests.conftest import make_app
    from webapp.mail import send_email

    app = make_app(database_url, MAIL_BACKEND="file")
    app.config["MAIL_FILE_PATH"] = str(tmp_path / "mail")
    with app.app_context():
        from flask_mailman import Mail

        Mail().init_app(app)
        db.create_all()
        send_email(to="someone@example.com", subject="Hello", text="Body text")
        assert not (tmp_path / "mail").exists()  # an outbox row until the transaction commits
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    files = list((tmp_path / "mail").iterdir())
    assert len(files) == 1
    assert "Body text" in files[0].read_text()

"""Importing a shop's customers from its previous program: reading the file safely, the dry run's
problems in words, idempotent re-imports, resuming an interrupted import, taking the account over
at sign-up."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import (
    CustomerImport,
    CustomerImportRow,
    LedgerEntry,
    Membership,
    User,
)
from webapp.services import accounts, imports, ledger, memberships

GOOD_AND_BAD = """Name,Phone,E-mail,Points,Card,Consent
Aliya Nurlanovna,8 701 111 2233,aliya@example.com,120,OLD-001,12.03.2024
Bolat,+7 701 111 2234,,0,,
Dana,701 111 2235,dana@example.com,45,,
Bad Phone,12345,bad@example.com,10,,
Negative,8 701 111 2236,,-5,,
Twice,+7 (701) 111-22-33,,7,,
Nobody,,,,,
Bad Mail,,not-an-address,3,,
Half,8 701 111 2237,,twelve,,
Future,8 701 111 2238,,1,,01.01.2999
"""


@pytest.fixture
def shop(make_merchant):
    return make_merchant(name="Old Bakery")


def upload(shop, text: str, encoding: str = "utf-8", mapping: dict[str, str] | None = None):
    job = imports.create_upload(db.session, shop, shop.owner, "customers.csv", text.encode(encoding))
    chosen = list(job.mapping)
    for column, field in (mapping or {}).items():
        chosen[job.header.index(column)] = field
    return imports.set_mapping(db.session, job, chosen)


def balances_match_the_ledger() -> bool:
    return ledger.find_balance_mismatches(db.session) == []


# --------------------------------------------------------------------------- reading the file


def test_windows_1251_with_semicolons_and_utf8_with_bom_and_commas_are_both_read(shop):
    text = "Имя;Телефон;Баллы\nАйгерим Садыкова;8 701 222 3344;300\n"
    job = upload(shop, text, "cp1251")
    assert (job.encoding, job.delimiter) == ("windows-1251", ";")
    assert job.header == ["Имя", "Телефон", "Баллы"]
    assert job.mapping == ["name", "phone", "balance"]  # guessed from the Russian header
    assert imports.preview_rows(job)[0][0] == "Айгерим Садыкова"

    other = upload(shop, "\ufeffName,Mobile,Bonus points\n\"Smith, Ann\",+7 701 222 3345,5\n")
    assert (other.encoding, other.delimiter) == ("utf-8", ",")
    assert other.header[0] == "Name"  # the byte order mark is not part of the header
    assert imports.preview_rows(other)[0][0] == "Smith, Ann"


@pytest.mark.parametrize("data, words", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a CSV file"),
    (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00", "not a CSV file"),
    (b"", "empty"),
    (b"name,phone\n", "no customers"),
    (b"name,phone\n" + b"x" * 30_000 + b",1\n", "longer than 20000 characters"),
    (b",".join([b"c"] * 60) + b"\n" + b",".join([b"1"] * 60) + b"\n", "60 columns"),
    (b'name,phone\n"' + b"a\n" * 70_000 + b'",1\n', "not a readable CSV"),
])
def test_binary_files_and_csv_bombs_get_a_clear_message_and_store_nothing(shop, data, words):
    with pytest.raises(imports.ImportRejected) as refused:
        imports.create_upload(db.session, shop, shop.owner, "x.csv", data)
    assert words in refused.value.message
    db.session.rollback()
    assert db.session.scalar(select(func.count(CustomerImport.id))) == 0


def test_a_mapping_must_name_a_way_to_recognise_people_and_each_field_once(shop):
    job = imports.create_upload(db.session, shop, shop.owner, "x.csv", b"A,B\nAnn,5\n")
    with pytest.raises(imports.ValidationFailed) as refused:
        imports.set_mapping(db.session, job, ["name", "balance"])
    assert "phone, the e-mail or the card code" in refused.value.message
    with pytest.raises(imports.ValidationFailed) as twice:
        imports.set_mapping(db.session, job, ["phone", "phone"])
    assert "more than one column" in twice.value.message


# --------------------------------------------------------------------------- the dry run


def test_the_dry_run_names_every_bad_row_in_words_and_counts_them(shop):
    job = upload(shop, GOOD_AND_BAD, mapping={"Card": "card_code", "Consent": "consent_date"})
    check = imports.dry_run(db.session, shop, job)
    assert (check.total, check.create, check.link, check.skip) == (10, 3, 0, 0)
    assert check.failed == 7
    assert check.points == 120 + 0 + 45
    by_line = {row.line: "; ".join(row.problems) for row in check.problems}
    assert by_line[5] == "bad phone number “12345”"
    assert by_line[6] == "negative points balance -5"
    assert by_line[7].startswith("the same person as on line 2")
    assert by_line[8] == "no phone, e-mail or card code to recognise the person by"
    assert by_line[9] == "bad e-mail address “not-an-address”"
    assert by_line[10] == "the points balance “twelve” is not a whole number"
    assert by_line[11].startswith("bad consent date “01.01.2999”")
    assert check.counts == {"phone": 1, "balance": 2, "duplicate": 1, "identity": 1, "email": 1, "date": 1}
    # A dry run writes nothing.
    assert db.session.scalar(select(func.count(Membership.id))) == 0


# --------------------------------------------------------------------------- importing


def test_import_creates_cards_with_ledger_balances_kept_codes_and_consent_only_when_recorded(shop):
    job = upload(shop, GOOD_AND_BAD, mapping={"Card": "card_code", "Consent": "consent_date"})
    job = imports.run(db.session, job.id)
    assert job.status == "done"
    assert (job.created_count, job.linked_count, job.skipped_count, job.failed_count) == (3, 0, 0, 7)
    assert job.points_imported == 165
    aliya = db.session.scalar(select(User).where(User.phone == "+77011112233"))
    assert aliya.card_code == "OLD-001" and aliya.email == "aliya@example.com"
    assert aliya.password_hash == "" and aliya.imported_at is not None
    card = memberships.find_membership(db.session, aliya.id, shop.id)
    assert card.balance == 120 and card.join_source == "import"
    entry = db.session.scalar(select(LedgerEntry).where(LedgerEntry.membership_id == card.id))
    assert (entry.kind, entry.amount, entry.reason_kind, entry.reason_params) == ("adjust", 120, "imported", {})
    assert balances_match_the_ledger()
    # Consent recorded in the old program: contactable; without it: not.
    assert memberships.has_consent(db.session, aliya.id, shop.id, memberships.MARKETING)
    bolat = db.session.scalar(select(User).where(User.phone == "+77011112234"))
    assert not memberships.has_consent(db.session, bolat.id, shop.id, memberships.MARKETING)
    assert accounts.is_placeholder_email(bolat.email)
    # The old card works at the till, typed as printed.
    assert memberships.find_customer_at_till(db.session, shop, "old-001").user_id == aliya.id


def test_importing_the_same_file_again_changes_nothing(shop):
    imports.run(db.session, upload(shop, GOOD_AND_BAD).id)
    before = (
        db.session.scalar(select(func.count(User.id))),
        db.session.scalar(select(func.count(Membership.id))),
        db.session.scalar(select(func.count(LedgerEntry.id))),
        db.session.scalar(select(func.sum(Membership.balance))),
    )
    again = imports.run(db.session, upload(shop, GOOD_AND_BAD).id)
    assert (again.created_count, again.linked_count, again.skipped_count) == (0, 0, 3)
    assert again.points_imported == 0
    after = (
        db.session.scalar(select(func.count(User.id))),
        db.session.scalar(select(func.count(Membership.id))),
        db.session.scalar(select(func.count(LedgerEntry.id))),
        db.session.scalar(select(func.sum(Membership.balance))),
    )
    assert after == before
    # The dry run of a third upload says so before anything happens.
    check = imports.dry_run(db.session, shop, upload(shop, GOOD_AND_BAD))
    assert (check.create, check.skip) == (0, 3)


def test_an_existing_account_gets_a_card_and_a_member_already_here_is_not_imported_twice(
    shop, make_user, make_member, make_merchant,
):
    elsewhere = make_user(name="Erlan", phone="+7 701 333 0001")
    regular = make_member(shop, user=make_user(name="Gulnara", phone="+7 701 333 0002"), points=9)
    text = "name,phone,points\nErlan,8 701 333 0001,50\nGulnara,8 701 333 0002,70\n"
    job = imports.run(db.session, upload(shop, text).id)
    assert (job.created_count, job.linked_count, job.failed_count) == (0, 1, 1)
    assert memberships.find_membership(db.session, elsewhere.id, shop.id).balance == 50
    db.session.refresh(regular)
    assert regular.balance == 9
    assert balances_match_the_ledger()


def make_rows(count: int, start: int = 0) -> str:
    lines = ["name,phone,points"]
    lines += [f"Person {n},+7 701 {400_0000 + n:07d},{n}" for n in range(start, start + count)]
    return "\n".join(lines) + "\n"


def test_an_interrupted_import_keeps_whole_batches_and_resumes_without_duplicates(shop, monkeypatch):
    job = upload(shop, make_rows(10))
    job = imports.run(db.session, job.id, batch_size=3, stop_after=1)
    assert (job.status, job.next_row) == ("running", 3)

    # The next batch fails half-way (after its users and cards were inserted): rolled back whole.
    real = ledger.post
    monkeypatch.setattr(imports.ledger, "post", lambda *args, **kwargs: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        imports.run(db.session, job.id, batch_size=3)
    db.session.expire_all()
    job = db.session.get(CustomerImport, job.id)
    assert (job.status, job.next_row) == ("failed", 3)
    assert db.session.scalar(select(func.count(Membership.id))) == 3
    assert db.session.scalar(select(func.count(User.id)).where(User.imported_at.is_not(None))) == 3

    monkeypatch.setattr(imports.ledger, "post", real)
    job = imports.run(db.session, job.id, batch_size=3)
    assert (job.status, job.next_row, job.created_count) == ("done", 10, 10)
    assert db.session.scalar(select(func.count(Membership.id))) == 10
    assert db.session.scalar(select(func.count(CustomerImportRow.id))) == 10
    assert db.session.scalar(select(func.sum(Membership.balance))) == sum(range(10))
    assert balances_match_the_ledger()
    # Running a finished import again does nothing.
    assert imports.run(db.session, job.id).created_count == 10
    assert db.session.scalar(select(func.count(LedgerEntry.id))) == 9


def test_a_batch_another_worker_committed_first_is_not_written_twice(shop):
    job = upload(shop, make_rows(4))
    other = upload(shop, make_rows(4))  # a second upload of the same people races the first
    imports.run(db.session, other.id)
    job = imports.run(db.session, job.id, batch_size=2)
    assert (job.status, job.created_count, job.skipped_count) == ("done", 0, 4)
    assert db.session.scalar(select(func.count(Membership.id))) == 4
    assert balances_match_the_ledger()


def test_signing_up_with_the_imported_phone_takes_the_card_and_its_points_over(shop):
    imports.run(db.session, upload(shop, "name,phone,points\nTimur,8 701 555 7788,250\n").id)
    imported = db.session.scalar(select(User).where(User.phone == "+77015557788"))
    user = accounts.register_user(db.session, "timur@example.com", "a long enough password",
                                  "Timur Bekov", phone="+7 (701) 555-77-88")
    assert user.id == imported.id
    assert accounts.authenticate(db.session, "timur@example.com", "a long enough password").id == user.id
    assert memberships.find_membership(db.session, user.id, shop.id).balance == 250
    # Claimed once: the same number cannot be taken over again.
    with pytest.raises(accounts.Conflict):
        accounts.register_user(db.session, "other@example.com", "a long enough password", "Other",
                               phone="87015557788")


def test_an_imported_email_must_match_to_take_the_account_over_by_phone(shop):
    imports.run(db.session, upload(shop, "name,phone,email\nZhanna,8 701 555 9900,zh@example.com\n").id)
    with pytest.raises(accounts.Conflict):
        accounts.register_user(db.session, "someone@example.com", "a long enough password", "X",
                               phone="8 701 555 9900")
    user = accounts.register_user(db.session, "zh@example.com", "a long enough password", "Zhanna",
                                  phone="8 701 555 9900")
    assert user.imported_at is not None and user.password_hash


def test_posting_many_cards_keeps_every_balance_guarded_and_equal_to_the_ledger(make_merchant, make_member):
    shop = make_merchant()
    rich, poor = make_member(shop, points=50), make_member(shop, points=5)
    ledger.post(db.session, [
        ledger.Posting(rich.id, shop.id, "adjust", 30, "test"),
        ledger.Posting(poor.id, shop.id, "adjust", 7, "test"),
        ledger.Posting(rich.id, shop.id, "adjust", -10, "test"),
    ])
    db.session.commit()
    db.session.refresh(rich)
    db.session.refresh(poor)
    assert (rich.balance, poor.balance) == (70, 12)
    with pytest.raises(ledger.InsufficientPoints):
        ledger.post(db.session, [
            ledger.Posting(rich.id, shop.id, "adjust", -5, "test"),
            ledger.Posting(poor.id, shop.id, "adjust", -13, "test"),
        ])
    db.session.rollback()
    db.session.refresh(rich)
    db.session.refresh(poor)
    assert (rich.balance, poor.balance) == (70, 12)
    assert balances_match_the_ledger()


# --------------------------------------------------------------------------- the pages


def test_the_owner_uploads_corrects_the_mapping_checks_and_imports_with_an_emailed_summary(
    app, client, shop, make_merchant,
):
    mail = app.extensions["mailman"]
    mail.outbox = []
    client.login(shop.owner)
    text = "Клиент;Контакт;Остаток\nАсем;8 701 666 0001;15\nБерик;12;3\n"
    sent = client.post_form(f"/business/{shop.slug}/customers/import",
                            {"file": (io.BytesIO(text.encode("cp1251")), "old.csv")},
                            content_type="multipart/form-data")
    assert sent.status_code == 303
    page_url = sent.headers["Location"]
    page = client.get(page_url).get_data(as_text=True)
    assert "Асем" in page and "windows-1251" in page
    # "Контакт" is not recognised: without it nobody can be recognised, and the page says so.
    refused = client.post_form(page_url + "/mapping", {"column-0": "name", "column-2": "balance"})
    assert refused.status_code == 422
    assert "phone, the e-mail or the card code" in refused.get_data(as_text=True)
    assert client.post_form(page_url + "/mapping", {
        "column-0": "name", "column-1": "phone", "column-2": "balance",
    }).status_code == 303
    check = client.get(page_url).get_data(as_text=True)
    assert "bad phone number “12”" in check and "Import 1 customer" in check
    # Another business's owner cannot see or start it.
    stranger = make_merchant(name="Neighbour")
    client.login(stranger.owner)
    job_id = page_url.rsplit("/", 1)[1]
    assert client.get(f"/business/{stranger.slug}/customers/import/{job_id}").status_code == 404
    client.login(shop.owner)
    assert client.post_form(page_url + "/start", {}).status_code == 303
    done = client.get(page_url).get_data(as_text=True)
    assert "Import: done" in done and 'hx-trigger="every 1s"' not in done
    summaries = [message for message in mail.outbox if "Customer import finished" in message.subject]
    assert len(summaries) == 1 and summaries[0].to == [shop.owner.email]
    assert "New customers: 1" in summaries[0].body
    assert db.session.scalar(select(func.sum(Membership.balance)).where(Membership.merchant_id == shop.id)) == 15
    listing = client.get(f"/business/{shop.slug}/customers").get_data(as_text=True)
    assert "Асем" in listing and "+7 701 666 0001" in listing and "imported.invalid" not in listing


def test_a_large_file_is_dry_run_by_the_queue_while_the_page_polls(client, shop, monkeypatch):
    monkeypatch.setattr(imports, "INLINE_CHECK_ROWS", 2)
    job = imports.create_upload(db.session, shop, shop.owner, "big.csv", make_rows(3).encode())
    imports.set_mapping(db.session, job, job.mapping)
    client.login(shop.owner)
    url = f"/business/{shop.slug}/customers/import/{job.id}"
    polling = client.get(url, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Checking 3 rows" in polling and 'hx-trigger="every 1s"' in polling
    with pytest.raises(imports.ValidationFailed):
        imports.queue(db.session, job)  # no import before the dry run is seen
    imports.request_check(db.session, job)  # the queue (in-process in tests) runs the check
    db.session.expire_all()
    job = db.session.get(CustomerImport, job.id)
    assert job.status == "checked" and job.check_summary["create"] == 3
    # The next poll reloads the page, which shows the stored dry run.
    done = client.get(url, headers={"HX-Request": "true"})
    assert done.status_code == 204 and done.headers["HX-Refresh"] == "true"
    assert "Import 3 customers" in client.get(url).get_data(as_text=True)


def test_the_progress_region_polls_while_the_import_runs(client, shop):
    job = upload(shop, make_rows(3))
    job.status = "running"
    db.session.commit()
    client.login(shop.owner)
    fragment = client.get(f"/business/{shop.slug}/customers/import/{job.id}",
                          headers={"HX-Request": "true"}).get_data(as_text=True)
    assert fragment.lstrip().startswith('<section class="card" id="import-progress"')
    assert 'hx-trigger="every 1s"' in fragment and 'max="3" value="0"' in fragment


@pytest.fixture
def app_overrides():
    return {"IMPORT_MAX_BYTES": 2048}


def test_an_upload_over_the_size_cap_is_refused_before_reading_and_stores_nothing(client, shop):
    client.login(shop.owner)
    url = f"/business/{shop.slug}/customers/import"
    # A declared size over the cap: refused from the header alone (the body is never read).
    declared = client.post(url, data=b"x" * 10, content_type="multipart/form-data; boundary=x",
                           environ_overrides={"CONTENT_LENGTH": str(200 * 1024 * 1024)})
    assert declared.status_code == 413
    assert "larger than" in declared.get_data(as_text=True)
    # A body over the cap that fits the form overhead: refused after reading at most the cap.
    big = ("name,phone\n" + "Ann,+77011234567\n" * 200).encode()
    sent = client.post_form(url, {"file": (io.BytesIO(big), "big.csv")}, content_type="multipart/form-data")
    assert sent.status_code == 413
    assert "Split it into smaller files" in sent.get_data(as_text=True)
    assert db.session.scalar(select(func.count(CustomerImport.id))) == 0


def test_the_cli_imports_with_a_mapping_and_its_dry_run_writes_nothing(app, shop, tmp_path):
    path = tmp_path / "old.csv"
    path.write_text("Клиент;Контакт;Остаток\nАсем;8 701 666 0001;15\nБерик;12;3\n", encoding="cp1251")
    runner = app.test_cli_runner()
    args = ["import-customers", shop.slug, str(path), "--map", "Контакт=phone", "--map", "Остаток=balance"]
    dry = runner.invoke(args=[*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "1 new" in dry.output and "line 3: bad phone number “12”" in dry.output
    assert db.session.scalar(select(func.count(Membership.id))) == 0
    done = runner.invoke(args=args)
    assert done.exit_code == 0, done.output
    assert "done: 1 new customers" in done.output
    assert db.session.scalar(select(func.sum(Membership.balance))) == 15
    assert runner.invoke(args=["import-customers", "no-such-shop", str(path)]).exit_code != 0

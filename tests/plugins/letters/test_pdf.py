"""Printed letters: one PDF with the address, Cyrillic and Kazakh text and a wallet QR code; a
renderer that loads nothing but data: URLs and our own stylesheet, and refuses at its time limit."""

from __future__ import annotations

import io
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import segno
from pypdf import PdfReader
from sqlalchemy import select

from plugins.letters import delivery, pdf, services
from plugins.letters.models import Letter
from tests.kit import enable_plugins
from tests.plugins.letters.conftest import buy, set_letters
from webapp.extensions import db
from webapp.services import memberships

KAZAKH = "Әсел Нұрланқызы"
RUSSIAN = "Спасибо за покупку, дорогая"


def pdf_text(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "letter.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, text=True).stdout


def qr_modules(image, border: int = delivery.QR_BORDER, scale: int = delivery.QR_SCALE) -> list[list[int]]:
    """Read the module grid back from the QR image embedded in the PDF (dark = 1)."""
    gray = image.convert("L")
    size = gray.width // scale - 2 * border
    return [
        [1 if gray.getpixel(((border + x) * scale + scale // 2, (border + y) * scale + scale // 2)) < 128 else 0
         for x in range(size)]
        for y in range(size)
    ]


@pytest.fixture
def postal_customer(shop, make_user, make_member):
    set_letters(shop, postal_letters=True)
    services.save_template(
        db.session, shop, "thanks", "Рахмет, {first_name}!",
        RUSSIAN + " {first_name}! Сумма: {amount}. Қош келдіңіз!", "",
    )
    user = make_user(name=KAZAKH, email="asel@example.com")
    membership = make_member(shop, user=user)
    memberships.grant_consent(db.session, user, shop, memberships.MARKETING, "test")
    services.save_address(
        db.session, user,
        {"recipient": KAZAKH, "street": "ул. Абая, 15, кв. 7", "city": "Алматы", "postcode": "050000",
         "country": "Қазақстан"},
    )
    return membership


def test_letters_to_print_make_one_pdf_with_address_fonts_and_wallet_qr(client, shop, postal_customer, tmp_path):
    buy(shop, postal_customer)
    buy(shop, postal_customer)
    pending = list(db.session.scalars(select(Letter).where(Letter.channel == "post")))
    assert [letter.status for letter in pending] == ["pending", "pending"]
    client.login(shop.owner)
    page = client.get(f"/business/{shop.slug}/letters/print")
    assert page.status_code == 200 and "2 letters waiting" in page.get_data(as_text=True)
    response = client.get(f"/business/{shop.slug}/letters/print.pdf")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.data))
    assert len(reader.pages) == 2
    # A4 in points.
    assert (round(float(reader.pages[0].mediabox.width)), round(float(reader.pages[0].mediabox.height))) == (595, 842)
    text = pdf_text(response.data, tmp_path)
    assert text.count(RUSSIAN) == 2 and "Қош келдіңіз!" in text and "₸" in text
    assert "ул. Абая, 15, кв. 7" in text and "050000 Алматы" in text and "Қазақстан" in text
    fonts = {str(font.get("/BaseFont")) for font in _fonts(reader)}
    assert any("DejaVu-Sans" in name for name in fonts), fonts

    # The QR code: the image embedded in the PDF carries exactly the symbol of the wallet URL.
    wallet_url = f"http://localhost/wallet/cards/{postal_customer.id}"
    assert wallet_url in text
    expected = [list(row) for row in segno.make(wallet_url, error="m").matrix]
    images = [image.image for image in reader.pages[0].images]
    assert any(qr_modules(image) == expected for image in images if image.width == image.height)
    if _has_zxing():  # a real decoder, where installed, reads the same URL back
        import zxingcpp

        decoded = {result.text for image in images for result in zxingcpp.read_barcodes(image)}
        assert wallet_url in decoded

    response = client.post_form(
        f"/business/{shop.slug}/letters/print/mark", {"letter_id": [str(letter.id) for letter in pending]}
    )
    assert response.status_code == 303
    db.session.expire_all()
    assert {db.session.get(Letter, letter.id).status for letter in pending} == {"printed"}
    assert services.figures(db.session, shop).printed == 2
    assert client.get(f"/business/{shop.slug}/letters/print.pdf").status_code == 404  # nothing pending


def _has_zxing() -> bool:
    try:
        import zxingcpp  # noqa: F401
    except ImportError:
        return False
    return True


def _fonts(reader: PdfReader):
    for page in reader.pages:
        resources = page["/Resources"]
        for font in (resources.get("/Font") or {}).values():
            yield font.get_object()


def test_single_letter_pdf_from_the_customer_portrait(client, shop, postal_customer, tmp_path, make_merchant):
    buy(shop, postal_customer)
    client.login(shop.owner)
    portrait = client.get(f"/business/{shop.slug}/customers/{postal_customer.id}").get_data(as_text=True)
    assert f"/business/{shop.slug}/letters/customers/{postal_customer.id}/letter.pdf" in portrait
    response = client.get(f"/business/{shop.slug}/letters/customers/{postal_customer.id}/letter.pdf")
    assert response.status_code == 200
    text = pdf_text(response.data, tmp_path)
    assert KAZAKH in text and "Алматы" in text and RUSSIAN in text
    # Another merchant's owner cannot reach this customer.
    other = make_merchant(name="Car Wash")

    enable_plugins(other, "letters")
    client.login(other.owner)
    assert client.get(f"/business/{other.slug}/letters/customers/{postal_customer.id}/letter.pdf").status_code == 404


class _Canary(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802
        _Canary.hits.append(self.path)
        self.send_response(302)
        self.send_header("Location", "file:///etc/passwd")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def canary():
    _Canary.hits = []
    server = HTTPServer(("127.0.0.1", 0), _Canary)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_hostile_html_loads_no_local_file_and_makes_no_request(canary, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else "no-hostname"
    html = f"""<html><head>
      <link rel="stylesheet" href="{canary}/style.css">
      <link rel="attachment" href="file:///etc/hostname">
      <link rel="attachment" href="file://{secret}">
      <link rel="attachment" href="{canary}/attachment">
      <style>
        @import url("{canary}/import.css");
        @import url("file://{secret}");
        @font-face {{ font-family: x; src: url("{canary}/font.woff"); }}
        body {{ background: url("{canary}/bg.png"); font-family: x; }}
        p {{ background-image: url("file:///etc/passwd"); }}
      </style></head>
      <body><p>Visible text</p>
      <img src="file:///etc/passwd"><img src="file://{secret}"><img src="{canary}/img.png">
      <object data="file:///etc/passwd"></object><iframe src="{canary}/frame"></iframe>
      <embed src="{canary}/embed"><a href="{canary}/link">link</a>
      </body></html>"""
    data = pdf.render_pdf(html)
    text = pdf_text(data, tmp_path)
    assert "Visible text" in text
    assert "TOP-SECRET-CONTENT" not in text and "root:" not in text
    reader = PdfReader(io.BytesIO(data))
    assert reader.attachments == {}
    assert b"TOP-SECRET-CONTENT" not in data and b"root:x:" not in data
    if len(hostname) > 3:
        assert hostname.encode() not in data or hostname in "Visible text link"
    assert all(len(page.images) == 0 for page in reader.pages)
    assert _Canary.hits == []


def test_our_stylesheet_and_data_urls_are_allowed(tmp_path):
    png = segno.make("data-url-test")
    buffer = io.BytesIO()
    png.save(buffer, kind="png", scale=2)
    html = (
        f'<html><head><link rel="stylesheet" href="{next(iter(pdf.STATIC_FILES))}"></head>'
        f'<body><p>Стиль</p><img src="{pdf.data_url(buffer.getvalue(), "image/png")}"></body></html>'
    )
    reader = PdfReader(io.BytesIO(pdf.render_pdf(html)))
    assert len(reader.pages[0].images) == 1
    # letter.css sets A4 with no margin: the page is A4.
    assert round(float(reader.pages[0].mediabox.width)) == 595


def test_pathological_documents_render_or_are_refused_within_the_limit():
    nested = "<div>" * 10_000 + "deep" + "</div>" * 10_000
    huge = '<p style="font-size: 100000px">HUGE</p>' + "<p>x</p>" * 2000
    for html in (nested, huge):
        try:
            data = pdf.render_pdf(f"<html><body>{html}</body></html>", timeout=10)
        except pdf.PdfRefused as refused:
            assert refused.status_code == 422
        else:
            assert data.startswith(b"%PDF")


def test_the_time_limit_kills_the_renderer():
    with pytest.raises(pdf.PdfRefused) as refused:
        pdf.render_pdf("<html><body><p>Fine letter</p></body></html>", timeout=0.05)
    assert "too long" in refused.value.message
    assert pdf.time_limit(1) == 10 and pdf.time_limit(101) == 110


def test_merchant_markup_in_a_printed_letter_stays_text(client, shop, postal_customer, tmp_path, canary):
    services.save_template(
        db.session, shop, "thanks", "Hi",
        f'<link rel=attachment href=file:///etc/hostname><img src="{canary}/x.png">'
        "<style>p{font-size:9999px}</style> {first_name}", "",
    )
    buy(shop, postal_customer)
    client.login(shop.owner)
    response = client.get(f"/business/{shop.slug}/letters/print.pdf")
    assert response.status_code == 200
    text = pdf_text(response.data, tmp_path)
    assert "<link rel=attachment href=file:///etc/hostname>" in text.replace("\n", "")
    assert PdfReader(io.BytesIO(response.data)).attachments == {}
    assert _Canary.hits == []


def test_printed_letters_use_each_customers_language(client, shop, make_user, make_member, tmp_path):
    """With the default wording, a Bulgarian customer's letter is Bulgarian and a Kazakh one's Kazakh,
    amounts and dates written their way, in one PDF; the owner's pages stay in the owner's language."""
    from babel.dates import format_date

    from webapp.formatting import money

    set_letters(shop, postal_letters=True)
    shop.network.default_locale = "kk"
    db.session.commit()
    readers = {}
    for name, locale in (("Мария Петрова", "bg"), ("Әсел Нұрланқызы", None)):
        user = make_user(name=name, locale=locale)
        membership = make_member(shop, user=user)
        memberships.grant_consent(db.session, user, shop, memberships.MARKETING, "test")
        services.save_address(
            db.session, user,
            {"recipient": name, "street": "ул. Витоша 12", "city": "София", "postcode": "1000", "country": "България"},
        )
        readers[name] = (membership, buy(shop, membership, amount=1_234_500))
    client.login(shop.owner)
    response = client.get(f"/business/{shop.slug}/letters/print.pdf")
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    def plain(text: str) -> str:  # the PDF's text has ordinary spaces where Babel puts no-break ones
        return " ".join(text.replace("\xa0", " ").replace("\u202f", " ").split())

    text = plain(pdf_text(response.data, tmp_path))
    assert "Благодарим ви за посещението, Мария!" in text
    assert "С покупката си за " + plain(money(1_234_500, "KZT", "bg")) in text
    assert plain(format_date(readers["Мария Петрова"][1].created_at, "long", locale="bg")) in text
    assert "Келгеніңізге рақмет, Әсел!" in text  # no language of her own: the network's
    assert "Thank you for your visit" not in text

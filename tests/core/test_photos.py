"""Merchant photo uploads: only re-encoded pixels are stored, under random names; bad files get 422."""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import MerchantPhoto
from webapp.services import photos


def png_bytes(size=(64, 48), mode="RGB", color=(200, 30, 30), **save) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, "PNG", **save)
    return buffer.getvalue()


def jpeg_with_exif() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0131] = "LeakySoftware 1.0"  # Software
    buffer = io.BytesIO()
    Image.new("RGB", (80, 60), (10, 120, 10)).save(buffer, "JPEG", exif=exif.tobytes(), comment=b"secret comment")
    return buffer.getvalue()


def crafted_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge picture (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 4)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def upload(client, merchant, data: bytes, filename: str = "photo.png", **extra):
    return client.post_form(
        f"/business/{merchant.slug}/settings/photos",
        {"photo": (io.BytesIO(data), filename), "alt_text": "Shop front", **extra},
    )


def stored_files(app) -> list[Path]:
    folder = Path(app.config["UPLOAD_FOLDER"])
    return sorted(folder.iterdir()) if folder.exists() else []


def photo_count(merchant) -> int:
    return db.session.scalar(
        select(func.count(MerchantPhoto.id)).where(MerchantPhoto.merchant_id == merchant.id)
    )


@pytest.fixture
def owner_client(client, make_merchant):
    merchant = make_merchant()
    client.login(merchant.owner)
    client.merchant = merchant
    return client


def test_valid_png_is_reencoded_under_a_random_name_without_metadata(app, owner_client):
    merchant = owner_client.merchant
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"
    original = png_bytes(exif=exif.tobytes())
    assert b"SecretCam" in original
    response = upload(owner_client, merchant, original, filename="../../etc/passwd.png")
    assert response.status_code == 303

    photo = db.session.scalar(select(MerchantPhoto).where(MerchantPhoto.merchant_id == merchant.id))
    assert re.fullmatch(r"[0-9a-f]{32}\.jpg", photo.filename)
    assert (photo.width, photo.height, photo.alt_text) == (64, 48, "Shop front")
    files = stored_files(app)
    assert [path.name for path in files] == [photo.filename]
    stored = files[0].read_bytes()
    assert b"SecretCam" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert image.format == "JPEG"
        assert len(image.getexif()) == 0

    # Served publicly by the recorded name only.
    served = owner_client.get(f"/photos/{photo.filename}")
    assert served.status_code == 200
    assert served.mimetype == "image/jpeg"
    assert served.data == stored
    assert owner_client.get(f"/photos/{'0' * 32}.jpg").status_code == 404
    assert photo.filename in owner_client.get(f"/business/{merchant.slug}/settings").get_data(as_text=True)


def test_jpeg_exif_and_comments_are_stripped(app, owner_client):
    merchant = owner_client.merchant
    assert upload(owner_client, merchant, jpeg_with_exif(), "camera.jpg").status_code == 303
    stored = stored_files(app)[0].read_bytes()
    for secret in (b"SecretCam", b"LeakySoftware", b"secret comment", b"Exif"):
        assert secret not in stored


def test_transparent_png_becomes_webp_and_large_pictures_are_resized(app, owner_client):
    merchant = owner_client.merchant
    assert upload(owner_client, merchant, png_bytes((400, 300), "RGBA", (0, 0, 0, 0))).status_code == 303
    assert upload(owner_client, merchant, png_bytes((2400, 1200))).status_code == 303
    rows = db.session.scalars(
        select(MerchantPhoto).where(MerchantPhoto.merchant_id == merchant.id).order_by(MerchantPhoto.position)
    ).all()
    assert rows[0].filename.endswith(".webp")
    assert (rows[1].width, rows[1].height) == (1600, 800)
    with Image.open(Path(app.config["UPLOAD_FOLDER"]) / rows[1].filename) as image:
        assert image.size == (1600, 800)


@pytest.mark.parametrize(
    "data, filename",
    [
        (b"just some text, honestly\n" * 20, "notes.png"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "logo.svg"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "logo.png"),
        (b"GIF89a" + b"\x00" * 40, "old.gif"),
        (b"", "empty.png"),
    ],
    ids=["text-as-png", "svg", "svg-as-png", "broken-gif", "empty"],
)
def test_files_that_are_not_photos_are_refused(app, owner_client, data, filename):
    merchant = owner_client.merchant
    response = upload(owner_client, merchant, data, filename)
    assert response.status_code == 422
    assert 'id="e-photo"' in response.get_data(as_text=True)
    assert photo_count(merchant) == 0
    assert stored_files(app) == []


def test_polyglots_are_refused(app, owner_client):
    merchant = owner_client.merchant
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("payload.js", "alert(1)")
    markup_chunk_png = io.BytesIO()
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", "<script>alert(document.cookie)</script>")
    Image.new("RGB", (20, 20)).save(markup_chunk_png, "PNG", pnginfo=info)
    for data in (
        png_bytes() + b"<html><script>alert(1)</script></html>",
        jpeg_with_exif() + archive.getvalue(),
        png_bytes() + b"\x00trailing payload",
        markup_chunk_png.getvalue(),
    ):
        response = upload(owner_client, merchant, data)
        assert response.status_code == 422
    assert photo_count(merchant) == 0
    assert stored_files(app) == []


def test_too_large_upload_is_refused(app, owner_client):
    merchant = owner_client.merchant
    app.config["MAX_PHOTO_BYTES"] = 1000
    noisy = io.BytesIO()
    Image.effect_noise((200, 200), 64).convert("RGB").save(noisy, "PNG")
    response = upload(owner_client, merchant, noisy.getvalue())
    assert response.status_code in (413, 422)
    assert "larger than" in response.get_data(as_text=True)
    assert photo_count(merchant) == 0 and stored_files(app) == []


@pytest.mark.parametrize("width, height", [(7000, 7000), (30000, 30000), (1, 50_000_000)])
def test_decompression_bombs_are_refused(app, owner_client, width, height):
    merchant = owner_client.merchant
    if width == 7000:  # a real, fully valid picture that is simply too many pixels
        buffer = io.BytesIO()
        Image.new("1", (width, height)).save(buffer, "PNG")
        data = buffer.getvalue()
    else:
        data = crafted_png(width, height)
    assert len(data) < 1_000_000
    response = upload(owner_client, merchant, data)
    assert response.status_code == 422
    assert "too many pixels" in response.get_data(as_text=True)
    assert photo_count(merchant) == 0 and stored_files(app) == []


def test_delete_and_reorder_are_scoped_to_the_merchant(app, client, make_merchant):
    merchant, other = make_merchant(), make_merchant()
    client.login(merchant.owner)
    for color in ((255, 0, 0), (0, 255, 0), (0, 0, 255)):
        assert upload(client, merchant, png_bytes(color=color)).status_code == 303
    first, second, third = db.session.scalars(
        select(MerchantPhoto).where(MerchantPhoto.merchant_id == merchant.id).order_by(MerchantPhoto.position)
    ).all()
    base = f"/business/{merchant.slug}/settings/photos"
    assert client.post_form(f"{base}/{third.id}/move", {"direction": "up"}).status_code == 303
    order = db.session.scalars(
        select(MerchantPhoto.id).where(MerchantPhoto.merchant_id == merchant.id).order_by(MerchantPhoto.position)
    ).all()
    assert order == [first.id, third.id, second.id]

    # htmx gets the photos section back.
    response = client.post_form(f"{base}/{first.id}/delete", htmx=True)
    assert response.status_code == 200
    assert response.get_data(as_text=True).lstrip().startswith('<section class="card" id="settings-photos"')
    assert db.session.get(MerchantPhoto, first.id) is None
    assert first.filename not in [path.name for path in stored_files(app)]
    assert len(stored_files(app)) == 2

    # Another owner cannot touch these photos, nor upload to this merchant.
    client.post_form("/auth/logout")
    client.login(other.owner)
    assert client.post_form(f"/business/{other.slug}/settings/photos/{second.id}/delete").status_code == 404
    assert client.post_form(f"{base}/{second.id}/delete").status_code == 404
    assert upload(client, merchant, png_bytes()).status_code == 404
    assert photo_count(merchant) == 2


def test_photo_limit(app, owner_client, monkeypatch):
    merchant = owner_client.merchant
    monkeypatch.setattr(photos, "MAX_PHOTOS", 1)
    assert upload(owner_client, merchant, png_bytes()).status_code == 303
    response = upload(owner_client, merchant, png_bytes())
    assert response.status_code == 422
    assert photo_count(merchant) == 1


def test_reencode_unit_checks_pixels_before_decoding():
    limits = photos.Limits(max_bytes=10_000_000, max_pixels=1000)
    with pytest.raises(photos.PhotoRejected):
        photos.reencode(png_bytes((40, 40)), limits)  # 1,600 pixels > 1,000
    encoded, extension, width, height = photos.reencode(png_bytes((20, 20)), limits)
    assert (extension, width, height) == ("jpg", 20, 20)
    assert encoded.startswith(b"\xff\xd8")

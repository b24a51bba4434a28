"""Merchant photos: uploads checked and re-encoded with Pillow, stored under random names."""

from __future__ import annotations

import io
import os
import re
import secrets
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from flask_babel import gettext as _
from PIL import Image, ImageOps
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.errors import NeighbourlyError, NotFound, ValidationFailed
from webapp.formatting import file_size
from webapp.models import Merchant, MerchantPhoto
from webapp.unit_of_work import unit_of_work

MAX_SIDE = 1600
MAX_PHOTOS = 12
ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
FILENAME_PATTERN = re.compile(r"[0-9a-f]{32}\.(?:jpg|webp)")
# Markup or script inside an "image" means someone wants a browser to run it: refuse, don't clean.
_MARKUP_SIGNATURES = (
    b"<script", b"<html", b"<svg", b"<!doctype", b"<?php", b"<iframe", b"<body", b"javascript:",
)
_ZIP_END = b"PK\x05\x06"


class PhotoRejected(ValidationFailed):
    """The upload is not a photo we accept."""


class PhotoTooLarge(PhotoRejected):
    """The upload is larger than allowed."""

    status_code = 413


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_pixels: int


def _png_end(data: bytes) -> int | None:
    """Offset just after the IEND chunk, walking the chunk list; ``None`` if it is malformed."""
    offset = 8
    while offset + 8 <= len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        offset += 12 + length
        if kind == b"IEND":
            return offset
    return None


def _trailing_bytes(data: bytes, image_format: str) -> int:
    """How many bytes follow the end of the image stream (a polyglot hides its payload there)."""
    if image_format == "PNG":
        end = _png_end(data)
        return len(data) if end is None else max(len(data) - end, 0)
    if image_format == "WEBP":
        (size,) = struct.unpack("<I", data[4:8])
        end = 8 + size + (size & 1)
        return max(len(data) - end, 0)
    if image_format == "JPEG":
        end = data.rfind(b"\xff\xd9")
        if end < 0:
            return len(data)
        # Some cameras pad the file with zeros after the end-of-image marker; that is harmless.
        return len(data[end + 2 :].rstrip(b"\x00"))
    return 0


def _check_not_polyglot(data: bytes, image_format: str) -> None:
    lowered = data.lower()
    if any(signature in lowered for signature in _MARKUP_SIGNATURES):
        raise PhotoRejected(_("This file contains more than a picture; upload a plain photo."))
    if _ZIP_END in data[-(65535 + 22) :]:
        raise PhotoRejected(_("This file contains more than a picture; upload a plain photo."))
    if _trailing_bytes(data, image_format):
        raise PhotoRejected(_("This file contains more than a picture; upload a plain photo."))


def _not_a_photo() -> str:
    return _("This is not a photo we can use. Upload a JPEG, PNG or WebP picture.")


def reencode(data: bytes, limits: Limits) -> tuple[bytes, str, int, int]:
    """Check an upload and return ``(encoded, extension, width, height)`` of a clean copy.

    The copy is built from pixels alone: no EXIF, GPS, XMP, ICC or comments survive, and
    nothing of the original bytes is ever stored or served.
    """
    if len(data) > limits.max_bytes:
        raise PhotoTooLarge(
            _("The photo is larger than %(size)s.", size=file_size(limits.max_bytes))
        )
    if not data:
        raise PhotoRejected(_("Choose a photo to upload."))
    with warnings.catch_warnings():
        # Pillow only warns below twice its own limit; our limit is the one that counts.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as probe:
                image_format = probe.format or ""
                width, height = probe.size
                if image_format not in ACCEPTED_FORMATS:
                    raise PhotoRejected(_not_a_photo())
                if width * height > limits.max_pixels or width < 1 or height < 1:
                    raise PhotoRejected(
                        _("The picture has too many pixels (%(width)s × %(height)s).",
                          width=width, height=height)
                    )
                probe.verify()
            _check_not_polyglot(data, image_format)
            # verify() leaves the image unusable, so decode a fresh one.
            with Image.open(io.BytesIO(data)) as image:
                if image.format != image_format or image.size != (width, height):
                    raise PhotoRejected(_not_a_photo())
                image.load()
                image = ImageOps.exif_transpose(image) or image
                has_alpha = image.mode in ("RGBA", "LA", "PA") or (
                    image.mode == "P" and "transparency" in image.info
                )
                image = image.convert("RGBA" if has_alpha else "RGB")
                image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
                clean = Image.frombytes(image.mode, image.size, image.tobytes())
        except NeighbourlyError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise PhotoRejected(_("The picture has too many pixels.")) from None
        except Exception:
            # Decoders fail on hostile input in many ways (OSError, SyntaxError, struct.error...);
            # every one of them means the same thing to the owner.
            raise PhotoRejected(_not_a_photo()) from None
    output = io.BytesIO()
    if has_alpha:
        clean.save(output, "WEBP", quality=85, method=4)
        extension = "webp"
    else:
        clean.save(output, "JPEG", quality=85, optimize=True, progressive=True)
        extension = "jpg"
    return output.getvalue(), extension, clean.width, clean.height


def read_limited(stream: BinaryIO, max_bytes: int) -> bytes:
    """Read at most ``max_bytes + 1`` bytes, enough to tell that a file is too large."""
    return stream.read(max_bytes + 1)


def add_photo(
    session: Session, merchant: Merchant, data: bytes, upload_folder: str, limits: Limits,
    alt_text: str = "",
) -> MerchantPhoto:
    """Store a re-encoded copy under a random name and append it to the merchant's photos."""
    count = session.scalar(
        select(func.count(MerchantPhoto.id)).where(MerchantPhoto.merchant_id == merchant.id)
    )
    if count >= MAX_PHOTOS:
        raise PhotoRejected(_("At most %(count)s photos; delete one first.", count=MAX_PHOTOS))
    alt_text = (alt_text or "").strip()
    if len(alt_text) > 200:
        raise ValidationFailed(_("The description of the photo is too long (at most 200 characters)."))
    encoded, extension, width, height = reencode(data, limits)
    folder = Path(upload_folder)
    folder.mkdir(parents=True, exist_ok=True)
    filename = f"{secrets.token_hex(16)}.{extension}"
    target = folder / filename
    partial = folder / f".{filename}.part"
    partial.write_bytes(encoded)
    os.replace(partial, target)
    try:
        with unit_of_work(session):
            last = session.scalar(
                select(func.max(MerchantPhoto.position)).where(MerchantPhoto.merchant_id == merchant.id)
            )
            photo = MerchantPhoto(
                merchant_id=merchant.id, filename=filename, width=width, height=height,
                position=(last + 1) if last is not None else 0, alt_text=alt_text,
            )
            session.add(photo)
    except Exception:
        target.unlink(missing_ok=True)  # nothing half-written: no file without its row
        raise
    return photo


def _photos(session: Session, merchant: Merchant) -> list[MerchantPhoto]:
    return list(
        session.scalars(
            select(MerchantPhoto)
            .where(MerchantPhoto.merchant_id == merchant.id)
            .order_by(MerchantPhoto.position, MerchantPhoto.id)
        )
    )


def _photo(session: Session, merchant: Merchant, photo_id: int) -> MerchantPhoto:
    photo = session.scalar(
        select(MerchantPhoto).where(
            MerchantPhoto.id == photo_id, MerchantPhoto.merchant_id == merchant.id
        )
    )
    if photo is None:
        raise NotFound(_("No such photo."))
    return photo


def delete_photo(session: Session, merchant: Merchant, photo_id: int, upload_folder: str) -> None:
    """Remove the row, then the file (a leftover file is harmless; a dangling row is not)."""
    photo = _photo(session, merchant, photo_id)
    filename = photo.filename
    with unit_of_work(session):
        session.delete(photo)
    if FILENAME_PATTERN.fullmatch(filename):
        (Path(upload_folder) / filename).unlink(missing_ok=True)


def move_photo(session: Session, merchant: Merchant, photo_id: int, offset: int) -> None:
    """Move a photo ``offset`` places earlier (-1) or later (+1); the first photo is the cover."""
    target = _photo(session, merchant, photo_id)
    photos = _photos(session, merchant)
    index = photos.index(target)
    new_index = min(max(index + offset, 0), len(photos) - 1)
    photos.insert(new_index, photos.pop(index))
    with unit_of_work(session):
        for position, photo in enumerate(photos):
            photo.position = position


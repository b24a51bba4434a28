"""Shared by the certificate services: constants, refusals and certificate codes (hash, seal, format)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import lru_cache

from flask import current_app

from plugins.cross_marketing.models import Certificate
from webapp.plugin_api import NeighbourlyError, PurchaseDeclined, codes

PLUGIN_NAME = "cross_marketing"
CODE_SYMBOLS = 16  # 80 random bits
LIVE = ("issued", "attached")
PAGE_SIZE = 25
MAX_FACE_VALUE = 10**10
MAX_DAYS = 3650
QR_PREFIX = "neighbourly:cert:"


class TooManyAttempts(NeighbourlyError):
    """Too many wrong certificate codes; wait a minute and try again."""

    status_code = 429


class CertificateRefused(PurchaseDeclined):
    """The certificate cannot be used."""


# --------------------------------------------------------------------------- codes


def _secret(purpose: str) -> bytes:
    """A key for one purpose, derived from the app's secret (a database copy alone has none)."""
    return _derive(current_app.config["SECRET_KEY"], purpose)


@lru_cache(maxsize=16)
def _derive(base: str | bytes, purpose: str) -> bytes:
    return hmac.new(base.encode() if isinstance(base, str) else base, purpose.encode(), hashlib.sha256).digest()


def code_hash(code: str) -> str:
    return codes.keyed_hash(code, current_app.config["CODE_HASH_KEY"])


def seal(code: str) -> str:
    """Encrypt a code for the holder's later view: HMAC-SHA256 keystream over a random nonce."""
    nonce = secrets.token_bytes(16)
    stream = hmac.new(_secret("cross_marketing:seal"), nonce, hashlib.sha256).digest()
    data = code.encode()
    mixed = int.from_bytes(data, "big") ^ int.from_bytes(stream[:len(data)], "big")
    return (nonce + mixed.to_bytes(len(data), "big")).hex()


def unseal(sealed: str) -> str:
    raw = bytes.fromhex(sealed)
    nonce, data = raw[:16], raw[16:]
    stream = hmac.new(_secret("cross_marketing:seal"), nonce, hashlib.sha256).digest()
    return bytes(a ^ b for a, b in zip(data, stream, strict=False)).decode()


def new_code() -> tuple[str, dict[str, str]]:
    """A fresh code and the columns that store it (hash for lookup, sealed copy, last four)."""
    code = codes.generate(CODE_SYMBOLS)
    return code, {"code_hash": code_hash(code), "code_sealed": seal(code), "code_last4": code[-4:]}


def extract_code(text: str) -> str:
    """The code out of typed text, a scanned ``neighbourly:cert:`` QR or a certificate link."""
    text = (text or "").strip()
    if text.lower().startswith(QR_PREFIX):
        text = text[len(QR_PREFIX):]
    elif "/" in text:
        text = text.rstrip("/").rsplit("/", 1)[-1]
    return codes.normalize(text, CODE_SYMBOLS)  # raises InvalidCode before any lookup


def display_code(certificate: Certificate) -> str:
    return codes.group(unseal(certificate.code_sealed))

"""Random codes in Crockford base32 with a mod-37 check symbol, and keyed hashes for lookups."""

from __future__ import annotations

import hashlib
import hmac
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
CHECK_ALPHABET = ALPHABET + "*~$=U"  # 37 check symbols
_DECODE = {symbol: value for value, symbol in enumerate(ALPHABET)}
# Crockford's reading rules: letters that look like digits are read as those digits.
_ALIASES = {"O": "0", "I": "1", "L": "1"}


class InvalidCode(ValueError):
    """The text is not a well-formed code (wrong length, symbol or check character)."""


def check_symbol(payload: str) -> str:
    """The mod-37 check symbol of a payload of base32 symbols."""
    value = 0
    for symbol in payload:
        value = value * 32 + _DECODE[symbol]
    return CHECK_ALPHABET[value % 37]


def generate(symbols: int = 16) -> str:
    """A fresh code of ``symbols`` random symbols (5 bits each) plus its check symbol.

    One draw of ``5 * symbols`` random bits, read five at a time (each symbol uniform, as with
    one ``secrets.choice`` per symbol, at a fraction of the cost).
    """
    bits = secrets.randbits(5 * symbols)
    payload = "".join(ALPHABET[(bits >> (5 * index)) & 31] for index in range(symbols))
    return payload + check_symbol(payload)


def normalize(text: str, symbols: int = 16) -> str:
    """Canonical form of typed or scanned text; raises ``InvalidCode`` before any lookup.

    Case, spaces and dashes are ignored; the check symbol catches every single substitution and
    every swap of two neighbouring symbols.
    """
    cleaned = "".join(ch for ch in (text or "").upper() if ch not in " -\t\n")
    if len(cleaned) != symbols + 1:
        raise InvalidCode("wrong length")
    payload = "".join(_ALIASES.get(ch, ch) for ch in cleaned[:-1])
    check = cleaned[-1]
    if any(ch not in _DECODE for ch in payload):
        raise InvalidCode("unknown symbol")
    if check_symbol(payload) != check:
        raise InvalidCode("check symbol does not match")
    return payload + check


def is_valid(text: str, symbols: int = 16) -> bool:
    try:
        normalize(text, symbols)
    except InvalidCode:
        return False
    return True


def group(code: str, size: int = 4) -> str:
    """Code split into dash-separated groups for reading aloud or printing."""
    return "-".join(code[i : i + size] for i in range(0, len(code), size))


def keyed_hash(code: str, key: str | bytes) -> str:
    """HMAC-SHA256 of a normalized code: a copy of the database alone cannot produce a code."""
    if isinstance(key, str):
        key = key.encode()
    return hmac.new(key, code.encode(), hashlib.sha256).hexdigest()


def token_hash(token: str) -> str:
    """SHA-256 of a high-entropy token (session, reset link); only the hash is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def short_code(length: int = 6) -> str:
    """A short code people type from a poster (join codes); uniqueness is checked by the caller."""
    return "".join(secrets.choice(ALPHABET) for _ in range(length))

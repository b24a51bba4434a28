"""Accounts: registration, argon2id passwords, revocable server-side sessions, resets, erasure."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.errors import Conflict, NotFound, ValidationFailed
from webapp.models import PasswordResetToken, User, UserSession
from webapp.models.base import utcnow
from webapp.services import codes, phones
from webapp.unit_of_work import unit_of_work

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory parameters
_DUMMY_HASH = _hasher.hash("timing-equaliser")


def use_fast_hashing_for_tests() -> None:
    """Cheaper argon2id parameters; only ``TestConfig`` calls this, production keeps the defaults."""
    global _hasher, _DUMMY_HASH
    _hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    _DUMMY_HASH = _hasher.hash("timing-equaliser")
MIN_PASSWORD_LENGTH = 10
RESET_TOKEN_LIFETIME = timedelta(hours=2)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(user: User | None, password: str) -> bool:
    """Constant work whether or not the user exists, so timing reveals nothing."""
    stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
    try:
        ok = _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and user is not None and user.erased_at is None


def normalize_email(email: str) -> str:
    try:
        return validate_email((email or "").strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise ValidationFailed(_("Enter a valid e-mail address, like name@example.com.")) from None


def normalize_phone(phone: str | None, region: str | None = None) -> str | None:
    """The number in E.164 (None when blank); without a country code it is read as a number of
    ``region`` (the network's country). Raises ``InvalidPhone`` with a message for the form."""
    return phones.parse(phone, region)


def check_password_strength(password: str, email: str = "") -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(ngettext(
            "Use a password of at least %(num)d character.",
            "Use a password of at least %(num)d characters.",
            MIN_PASSWORD_LENGTH,
        ))
    if email and password.lower() == email.lower():
        raise ValidationFailed(_("The password must not be your e-mail address."))


def new_card_code(session: Session) -> str:
    """A customer's card code for the till: 10 random symbols and a check symbol."""
    while True:
        code = codes.generate(10)
        if session.scalar(select(User.id).where(User.card_code == code)) is None:
            return code


def find_user_by_email(session: Session, email: str) -> User | None:
    try:
        email = normalize_email(email)
    except ValidationFailed:
        return None
    return session.scalar(select(User).where(User.email == email))


def register_user(
    session: Session,
    email: str,
    password: str,
    name: str,
    phone: str | None = None,
    locale: str | None = None,
    region: str | None = None,
) -> User:
    """Create an account; raises ``ValidationFailed``/``Conflict`` with a message for the form.

    A phone number without a country code is read as one of ``region`` (by default the country
    of this server's first network). When the number belongs to a person a merchant imported
    and nobody has signed up as yet, that account is taken over, cards and points included.
    """
    email = normalize_email(email)
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(_("Enter your name."))
    if len(name) > 120:
        raise ValidationFailed(_("The name is too long (at most 120 characters)."))
    check_password_strength(password, email)
    phone = normalize_phone(phone, region or phones.region_for_user(session, None))
    imported = _unclaimed_import(session, phone, email) if phone else None
    if imported is not None:
        return _claim_imported(session, imported, email, password, name, locale)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(_("An account with this e-mail already exists; sign in instead."))
    if phone and session.scalar(select(User.id).where(User.phone == phone)) is not None:
        raise Conflict(_("This phone number is already used by another account."))
    user = User(
        email=email,
        password_hash=hash_password(password),
        name=name,
        phone=phone,
        locale=locale,
        card_code=new_card_code(session),
    )
    try:
        with unit_of_work(session):  # a caller's own block (the demo, an import) commits instead
            session.add(user)
            session.flush()
    except IntegrityError:
        raise Conflict(_("An account with this e-mail or phone already exists.")) from None
    return user


def _unclaimed_import(session: Session, phone: str, email: str) -> User | None:
    """The imported, never signed-up account with this phone, if its e-mail (when the previous
    program had one) is the one given now and no other account has that e-mail."""
    user = session.scalar(
        select(User).where(
            User.phone == phone, User.imported_at.is_not(None), User.password_hash == "",
            User.erased_at.is_(None),
        )
    )
    if user is None:
        return None
    if not is_placeholder_email(user.email) and user.email != email:
        return None
    owner = session.scalar(select(User.id).where(User.email == email))
    if owner is not None and owner != user.id:
        return None
    return user


def _claim_imported(
    session: Session, user: User, email: str, password: str, name: str, locale: str | None,
) -> User:
    try:
        with unit_of_work(session):
            # Only an account nobody has claimed: the password is set by one conditional UPDATE,
            # so two sign-ups racing for one imported number cannot both take it.
            claimed = session.execute(
                update(User)
                .where(User.id == user.id, User.password_hash == "")
                .values(email=email, password_hash=hash_password(password), name=name, locale=locale)
            ).rowcount
            if not claimed:
                raise Conflict(_("This phone number is already used by another account."))
            session.flush()
    except IntegrityError:
        raise Conflict(_("An account with this e-mail or phone already exists.")) from None
    session.refresh(user)
    return user


PLACEHOLDER_EMAIL_DOMAIN = "imported.invalid"


def placeholder_email(token: str) -> str:
    """The address of an imported person the previous program had no e-mail for (the reserved
    ``.invalid`` domain: nothing is ever sent there)."""
    return f"imported-{token}@{PLACEHOLDER_EMAIL_DOMAIN}"


def is_placeholder_email(email: str | None) -> bool:
    return (email or "").endswith("@" + PLACEHOLDER_EMAIL_DOMAIN)


def authenticate(session: Session, email: str, password: str) -> User | None:
    user = find_user_by_email(session, email)
    return user if verify_password(user, password) else None


# --------------------------------------------------------------------------- sessions


def start_session(session: Session, user: User, user_agent: str = "") -> str:
    """Create a server-side session; returns the id Flask-Login keeps in the cookie."""
    token = secrets.token_urlsafe(32)
    with unit_of_work(session):
        session.add(
            UserSession(user_id=user.id, token_hash=codes.token_hash(token), user_agent=user_agent[:255])
        )
    return f"{user.id}:{token}"


@lru_cache(maxsize=1)
def _session_user_statement():
    """The signed-in user's look-up, built once: every request runs it."""
    return (
        select(User, UserSession.id)
        .join(UserSession, UserSession.user_id == User.id)
        .where(
            User.id == bindparam("user_id"),
            UserSession.token_hash == bindparam("token_hash"),
            UserSession.revoked_at.is_(None),
            User.erased_at.is_(None),
        )
    )


def load_session_user(session: Session, session_id: str) -> User | None:
    """The user of a live session id, or ``None`` if it was revoked, malformed or unknown."""
    user_id, _, token = (session_id or "").partition(":")
    if not user_id.isdigit() or not token:
        return None
    row = session.execute(
        _session_user_statement(), {"user_id": int(user_id), "token_hash": codes.token_hash(token)}
    ).first()
    if row is None:
        return None
    user = row[0]
    user.session_id = session_id  # what get_id returns for this request
    user.get_id = lambda: session_id  # type: ignore[method-assign]
    return user


def revoke_session(session: Session, session_id: str) -> None:
    user_id, _, token = (session_id or "").partition(":")
    if not token:
        return
    with unit_of_work(session):
        session.execute(
            update(UserSession)
            .where(UserSession.token_hash == codes.token_hash(token), UserSession.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )


def revoke_all_sessions(session: Session, user_id: int) -> None:
    with unit_of_work(session):
        session.execute(
            update(UserSession)
            .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )


def active_sessions(session: Session, user_id: int) -> list[UserSession]:
    return list(
        session.scalars(
            select(UserSession)
            .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
            .order_by(UserSession.created_at.desc())
        )
    )


def change_password(session: Session, user: User, current: str, new: str) -> None:
    """Change the password and end every session of the user (the caller signs in afresh)."""
    if not verify_password(user, current):
        raise ValidationFailed(_("The current password is not right."))
    check_password_strength(new, user.email)
    with unit_of_work(session):
        user.password_hash = hash_password(new)
        revoke_all_sessions(session, user.id)


# --------------------------------------------------------------------------- password reset


def create_reset_token(session: Session, user: User, now: datetime | None = None) -> str:
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    with unit_of_work(session):
        session.add(
            PasswordResetToken(
                user_id=user.id,
                token_hash=codes.token_hash(token),
                created_at=now,
                expires_at=now + RESET_TOKEN_LIFETIME,
            )
        )
    return token


def reset_password(session: Session, token: str, new_password: str) -> User:
    """Use a reset link once: sets the password and ends every session."""
    row = session.scalar(
        select(PasswordResetToken).where(PasswordResetToken.token_hash == codes.token_hash(token))
    )
    if row is None or row.used_at is not None or row.expires_at < utcnow():
        raise NotFound(_("This reset link is not valid any more; ask for a new one."))
    user = session.get(User, row.user_id)
    if user is None or user.erased_at is not None:
        raise NotFound(_("This reset link is not valid any more; ask for a new one."))
    check_password_strength(new_password, user.email)
    with unit_of_work(session):
        claimed = session.execute(
            update(PasswordResetToken)
            .where(PasswordResetToken.id == row.id, PasswordResetToken.used_at.is_(None))
            .values(used_at=utcnow())
        ).rowcount
        if not claimed:
            raise NotFound(_("This reset link is not valid any more; ask for a new one."))
        user.password_hash = hash_password(new_password)
        revoke_all_sessions(session, user.id)
    return user


def count_users(session: Session) -> int:
    return session.scalar(select(func.count(User.id)))


# --------------------------------------------------------------------------- the account page


def update_profile(
    session: Session, user: User, *, name: str, phone: str | None, locale: str | None,
    languages: tuple[str, ...] | list[str],
) -> User:
    """Change a customer's name, phone and language; the phone stays unique across accounts."""
    name = " ".join((name or "").split())
    if not name or len(name) > 120:
        raise ValidationFailed(_("Enter your name (at most 120 characters)."))
    phone = normalize_phone(phone, phones.region_for_user(session, user.id))
    if phone and session.scalar(select(User.id).where(User.phone == phone, User.id != user.id)):
        raise Conflict(_("This phone number is already used by another account."))
    locale = locale or None
    if locale is not None and locale not in languages:
        raise ValidationFailed(_("Choose a language from the list."))
    try:
        with unit_of_work(session):
            user.name, user.phone, user.locale = name, phone, locale
    except IntegrityError:
        raise Conflict(_("This phone number is already used by another account.")) from None
    return user


def session_token_hash(session_id: str | None) -> str | None:
    """The stored hash that identifies the ``UserSession`` row of a Flask-Login session id."""
    token = (session_id or "").partition(":")[2]
    return codes.token_hash(token) if token else None


def revoke_user_session(session: Session, user_id: int, user_session_id: int) -> UserSession:
    """End one of the user's own sessions; another user's session is ``NotFound``."""
    row = session.scalar(
        select(UserSession).where(
            UserSession.id == user_session_id,
            UserSession.user_id == user_id,
            UserSession.revoked_at.is_(None),
        )
    )
    if row is None:
        raise NotFound(_("This session has already ended."))
    with unit_of_work(session):
        row.revoked_at = utcnow()
    return row


def revoke_other_sessions(session: Session, user_id: int, keep_session_id: str) -> int:
    """End every session of the user except the one in this browser; returns how many ended."""
    keep = session_token_hash(keep_session_id) or ""
    with unit_of_work(session):
        ended = session.execute(
            update(UserSession)
            .where(
                UserSession.user_id == user_id,
                UserSession.revoked_at.is_(None),
                UserSession.token_hash != keep,
            )
            .values(revoked_at=utcnow())
        ).rowcount
    return ended

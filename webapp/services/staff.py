"""A merchant's staff: inviting cashiers by e-mailed link, accepting, revoking and removing."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, contains_eager

from webapp.errors import Conflict, Forbidden, NotFound
from webapp.models import Merchant, StaffInvitation, StaffRole, User
from webapp.models.base import utcnow
from webapp.services import codes
from webapp.services.accounts import normalize_email
from webapp.unit_of_work import unit_of_work

INVITATION_LIFETIME = timedelta(days=7)
MAX_OPEN_INVITATIONS = 50  # per merchant; more is abuse of our outgoing mail


@dataclass(frozen=True)
class Invitation:
    """A freshly created invitation and the token for its link (only its hash is stored)."""

    invitation: StaffInvitation
    token: str


def list_staff(session: Session, merchant: Merchant) -> list[StaffRole]:
    """Everyone with a role at ``merchant`` (with their users), owners first."""
    return list(
        session.scalars(
            select(StaffRole)
            .join(User, User.id == StaffRole.user_id)
            .options(contains_eager(StaffRole.user))
            .where(StaffRole.merchant_id == merchant.id)
            .order_by(StaffRole.role.desc(), User.name, StaffRole.id)
        )
    )


def open_invitations(session: Session, merchant: Merchant) -> list[StaffInvitation]:
    """Invitations neither accepted, revoked nor expired, newest first."""
    return list(
        session.scalars(
            select(StaffInvitation)
            .where(
                StaffInvitation.merchant_id == merchant.id,
                StaffInvitation.accepted_at.is_(None),
                StaffInvitation.revoked_at.is_(None),
                StaffInvitation.created_at > utcnow() - INVITATION_LIFETIME,
            )
            .order_by(StaffInvitation.created_at.desc(), StaffInvitation.id.desc())
            .limit(MAX_OPEN_INVITATIONS)
        )
    )


def invite_cashier(session: Session, merchant: Merchant, inviter: User, email: str) -> Invitation:
    """Create an invitation for ``email``; an earlier open one for the same address is replaced.

    The caller e-mails the link after this returns (the invitation is committed by then).
    """
    address = normalize_email(email)
    already = session.scalar(
        select(StaffRole.role)
        .join(User, User.id == StaffRole.user_id)
        .where(StaffRole.merchant_id == merchant.id, User.email == address)
    )
    if already is not None:
        raise Conflict(_("%(email)s already works here.", email=address), field="email")
    with unit_of_work(session):
        now = utcnow()
        # Re-inviting the same address replaces the old link, so only the newest one works.
        session.execute(
            update(StaffInvitation)
            .where(
                StaffInvitation.merchant_id == merchant.id,
                StaffInvitation.email == address,
                StaffInvitation.accepted_at.is_(None),
                StaffInvitation.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )
        open_count = session.scalar(
            select(func.count(StaffInvitation.id)).where(
                StaffInvitation.merchant_id == merchant.id,
                StaffInvitation.accepted_at.is_(None),
                StaffInvitation.revoked_at.is_(None),
                StaffInvitation.created_at > now - INVITATION_LIFETIME,
            )
        )
        if open_count >= MAX_OPEN_INVITATIONS:
            raise Conflict(
                _("Too many open invitations; revoke some before inviting more people."), field="email"
            )
        token = secrets.token_urlsafe(32)
        invitation = StaffInvitation(
            merchant_id=merchant.id,
            email=address,
            role="cashier",
            token_hash=codes.token_hash(token),
            invited_by_id=inviter.id,
            created_at=now,
        )
        session.add(invitation)
    return Invitation(invitation=invitation, token=token)


def find_invitation(session: Session, token: str) -> StaffInvitation | None:
    """The open invitation behind a link's token, or ``None`` (unknown, used, revoked, expired)."""
    if not token or len(token) > 200:
        return None
    invitation = session.scalar(
        select(StaffInvitation).where(StaffInvitation.token_hash == codes.token_hash(token))
    )
    if (
        invitation is None
        or invitation.accepted_at is not None
        or invitation.revoked_at is not None
        or invitation.created_at <= utcnow() - INVITATION_LIFETIME
    ):
        return None
    return invitation


def accept_invitation(session: Session, token: str, user: User) -> StaffRole:
    """``user`` joins the merchant as a cashier; the link works once and only for its address."""
    invitation = find_invitation(session, token)
    if invitation is None:
        raise NotFound(_("This invitation is no longer valid. Ask the owner for a new one."))
    if user.email.lower() != invitation.email.lower():
        raise Forbidden(
            _("This invitation was sent to %(email)s. Sign in with that address to accept it.",
              email=invitation.email)
        )
    now = utcnow()
    try:
        with unit_of_work(session):
            # The conditional UPDATE makes the link single-use even when two tabs accept at once.
            claimed = session.execute(
                update(StaffInvitation)
                .where(
                    StaffInvitation.id == invitation.id,
                    StaffInvitation.accepted_at.is_(None),
                    StaffInvitation.revoked_at.is_(None),
                )
                .values(accepted_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount
            if not claimed:
                raise NotFound(_("This invitation is no longer valid. Ask the owner for a new one."))
            existing = session.scalar(
                select(StaffRole).where(
                    StaffRole.user_id == user.id, StaffRole.merchant_id == invitation.merchant_id
                )
            )
            if existing is not None:
                return existing
            role = StaffRole(user_id=user.id, merchant_id=invitation.merchant_id, role=invitation.role)
            session.add(role)
    except IntegrityError:
        raise Conflict(_("You already work here.")) from None
    return role


def revoke_invitation(session: Session, merchant: Merchant, invitation_id: int) -> None:
    """Make an open invitation's link stop working."""
    with unit_of_work(session):
        revoked = session.execute(
            update(StaffInvitation)
            .where(
                StaffInvitation.id == invitation_id,
                StaffInvitation.merchant_id == merchant.id,
                StaffInvitation.accepted_at.is_(None),
                StaffInvitation.revoked_at.is_(None),
            )
            .values(revoked_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
        if not revoked:
            raise NotFound(_("No such open invitation."))


def remove_staff(session: Session, merchant: Merchant, role_id: int) -> StaffRole:
    """Take away someone's role at ``merchant``; the last owner always stays."""
    role = session.scalar(
        select(StaffRole).where(StaffRole.id == role_id, StaffRole.merchant_id == merchant.id)
    )
    if role is None:
        raise NotFound(_("No such person on the staff."))
    if role.role == "owner":
        owners = session.scalar(
            select(func.count(StaffRole.id)).where(
                StaffRole.merchant_id == merchant.id, StaffRole.role == "owner"
            )
        )
        if owners <= 1:
            raise Conflict(_("The last owner cannot be removed."))
    with unit_of_work(session):
        session.delete(role)
    return role

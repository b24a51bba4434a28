"""Referral rules: codes, linking at joining, rewards three levels deep, caps, reviews, figures."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import BigInteger, Integer, bindparam, case, func, literal, select, update
from sqlalchemy.orm import Session, aliased

from plugins.referrals import MAX_DEPTH
from plugins.referrals.models import LinkOpen, MonthlyTotal, ReferralCode, ReferralLink, Reward
from webapp.plugin_api import (
    Conflict,
    LedgerEntry,
    LedgerReason,
    LedgerReasonKind,
    Membership,
    Merchant,
    NotFound,
    Posting,
    Purchase,
    User,
    per_dialect,
    points_earned,
    post,
    unit_of_work,
    upsert_insert,
    utcnow,
)

# The reasons this plugin writes on ledger rows, rendered in the reader's language.
SIGNUP_BONUS = "referrals.signup"  # {"purchase": id}
FRIENDS_PURCHASE = "referrals.reward"  # {"purchase": id, "level": 1..3}
REVERSED = "referrals.reversed"  # {"purchase": id}
LEDGER_REASONS = (
    LedgerReasonKind(
        SIGNUP_BONUS, lambda p: _("Sign-up bonus on first purchase #%(number)s", number=p["purchase"]),
        {"purchase": 12},
    ),
    LedgerReasonKind(
        FRIENDS_PURCHASE,
        lambda p: _("Referral reward (level %(level)s) on a friend's purchase #%(number)s",
                    level=p["level"], number=p["purchase"]),
        {"purchase": 12, "level": 2},
    ),
    LedgerReasonKind(
        REVERSED,
        lambda p: _("Referral reward for purchase #%(number)s reversed by the business", number=p["purchase"]),
        {"purchase": 12},
    ),
)

CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 10



def normalize_code(code: str | None) -> str:
    return "".join(ch for ch in (code or "").upper() if ch in CODE_ALPHABET)[:24]


def ensure_code(session: Session, membership: Membership) -> str:
    """The member's personal code, created on first need (idempotent under races)."""
    code = session.scalar(select(ReferralCode.code).where(ReferralCode.membership_id == membership.id))
    if code:
        return code
    fresh = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    session.execute(
        upsert_insert(session)(ReferralCode.__table__)
        .values(merchant_id=membership.merchant_id, membership_id=membership.id, code=fresh,
                created_at=utcnow())
        .on_conflict_do_nothing()
    )
    return session.scalar(select(ReferralCode.code).where(ReferralCode.membership_id == membership.id))


def code_owner(session: Session, merchant_id: int, code: str) -> Membership | None:
    return session.scalar(
        select(Membership)
        .join(ReferralCode, ReferralCode.membership_id == Membership.id)
        .where(ReferralCode.code == normalize_code(code), ReferralCode.merchant_id == merchant_id)
    )


def record_open(session: Session, merchant: Merchant, code: str, ip: str | None) -> bool:
    """Count an opened link (only codes of this merchant); commits."""
    if code_owner(session, merchant.id, code) is None:
        return False
    with unit_of_work(session):
        session.add(LinkOpen(merchant_id=merchant.id, code=normalize_code(code), ip=(ip or "")[:64] or None))
    return True


def _same_person(referrer: User, friend: User) -> bool:
    if referrer.id == friend.id:
        return True
    if referrer.email and friend.email and referrer.email.strip().lower() == friend.email.strip().lower():
        return True
    return bool(referrer.phone and friend.phone and referrer.phone == friend.phone)


def _chain_contains(session: Session, start_id: int, target_id: int) -> bool:
    """Whether ``target_id`` is ``start_id`` or one of its referrers (the chain is walked fully)."""
    seen: set[int] = set()
    current: int | None = start_id
    while current is not None and current not in seen:
        if current == target_id:
            return True
        seen.add(current)
        current = session.scalar(select(Membership.referrer_id).where(Membership.id == current))
    return False


def link_at_joining(
    session: Session, merchant: Merchant, membership: Membership, code: str | None,
    ip: str | None, settings: dict,
) -> ReferralLink | None:
    """Link a new member to the owner of ``code`` (inside the joining transaction, no commit).

    Refused silently (the friend still joins): unknown code, the same person, e-mail or phone,
    a cycle. Held for review: more than the weekly limit of referrals from one address.
    """
    ensure_code(session, membership)
    if not code:
        return None
    referrer = code_owner(session, merchant.id, code)
    if referrer is None or referrer.id == membership.id or referrer.left_at is not None:
        return None
    friend_user = session.get(User, membership.user_id)
    if _same_person(session.get(User, referrer.user_id), friend_user):
        return None
    if _chain_contains(session, referrer.id, membership.id):
        return None
    if ip is None:
        ip = session.scalar(
            select(LinkOpen.ip).where(LinkOpen.merchant_id == merchant.id, LinkOpen.code == normalize_code(code))
            .order_by(LinkOpen.opened_at.desc(), LinkOpen.id.desc()).limit(1)
        )
    now = utcnow()
    status = "active"
    if ip:
        recent = session.scalar(
            select(func.count()).select_from(ReferralLink).where(
                ReferralLink.merchant_id == merchant.id, ReferralLink.ip == ip,
                ReferralLink.created_at >= now - timedelta(days=7),
            )
        )
        if recent >= settings["ip_weekly_limit"]:
            status = "held"
    link = ReferralLink(
        merchant_id=merchant.id, referrer_membership_id=referrer.id,
        referee_membership_id=membership.id, status=status, ip=(ip or "")[:64] or None, created_at=now,
    )
    session.add(link)
    if status == "active":
        _set_referrer(session, membership.id, referrer.id)
    session.flush()
    return link


def _set_referrer(session: Session, membership_id: int, referrer_id: int) -> None:
    # "Once, at joining": only an empty referrer is ever filled.
    session.execute(
        update(Membership)
        .where(Membership.id == membership_id, Membership.referrer_id.is_(None))
        .values(referrer_id=referrer_id)
        .execution_options(synchronize_session=False)
    )


def review(session: Session, merchant: Merchant, link_id: int, approve: bool) -> ReferralLink:
    """Approve or reject a held referral; approving links it unless that would close a cycle."""
    link = session.scalar(
        select(ReferralLink).where(ReferralLink.id == link_id, ReferralLink.merchant_id == merchant.id)
    )
    if link is None:
        raise NotFound(_("No such referral here."))
    if link.status != "held":
        raise Conflict(_("This referral has already been reviewed."))
    if approve and _chain_contains(session, link.referrer_membership_id, link.referee_membership_id):
        approve = False
    with unit_of_work(session):
        link.status = "active" if approve else "rejected"
        link.reviewed_at = utcnow()
        if approve:
            _set_referrer(session, link.referee_membership_id, link.referrer_membership_id)
    return link


def month_of(moment: datetime) -> date:
    return date(moment.year, moment.month, 1)


def level_amount(settings: dict, depth: int, amount_paid: int, point_value: int) -> int:
    """Points a beneficiary at ``depth`` (1..3) earns on a friend's purchase."""
    return points_earned(amount_paid, settings[f"level{depth}_bp"], point_value) + settings[f"level{depth}_fixed"]


class _Statements:
    """The reward path's statements, built once per dialect on the tables and run on the
    session's connection: a sale pays for executing them, not for composing them again.

    The reward rows and the cap reservations are executed with one parameter set per row:
    SQLAlchemy sends them as one multi-row INSERT (``insertmanyvalues``) that it compiles once,
    where a ``values([...])`` statement would be compiled again for every sale.
    """

    def __init__(self, dialect: str) -> None:
        self._insert = upsert_insert(dialect)
        m = Membership.__table__
        m1, m2, m3 = m.alias("m1"), m.alias("m2"), m.alias("m3")
        self.chain = (
            select(m1.c.referrer_id, m2.c.referrer_id, m3.c.referrer_id)
            .select_from(m1.outerjoin(m2, m2.c.id == m1.c.referrer_id).outerjoin(m3, m3.c.id == m2.c.referrer_id))
            .where(m1.c.id == bindparam("membership_id"))
        )
        links = ReferralLink.__table__
        self.claim_bonus = (
            update(links)
            .where(links.c.referee_membership_id == bindparam("b_membership_id"), links.c.status == "active",
                   links.c.signup_bonus_purchase_id.is_(None))
            .values(signup_bonus_purchase_id=bindparam("b_purchase_id"))
        )
        totals, rewards = MonthlyTotal.__table__, Reward.__table__
        self.release_cap = (
            update(totals)
            .where(totals.c.membership_id == bindparam("b_membership_id"), totals.c.month == bindparam("b_month"))
            .values(total=totals.c.total - bindparam("b_amount", type_=BigInteger))
        )
        # A row already there (same purchase, beneficiary, depth) is skipped and missing from
        # what RETURNING gives back.
        self.claim = (
            self._insert(rewards).on_conflict_do_nothing()
            .returning(rewards.c.id, rewards.c.beneficiary_membership_id, rewards.c.depth)
        )
        self._reserve: dict[int, object] = {}

    def reserve(self, cap: int):
        """The cap upsert for one cap value (a bound literal: the rows carry every parameter).

        Both SET expressions read the row's old ``total`` and the upsert locks the row, so
        concurrent rewards to one beneficiary can never overshoot the cap.
        """
        statement = self._reserve.get(cap)
        if statement is None:
            if len(self._reserve) > 64:
                self._reserve.clear()
            table = MonthlyTotal.__table__
            statement = self._insert(table)
            asked = statement.excluded.last_granted  # min(wanted, cap) for this row
            limit = literal(cap, Integer)
            grant = case((table.c.total + asked <= limit, asked), (table.c.total < limit, limit - table.c.total),
                         else_=0)
            statement = self._reserve[cap] = statement.on_conflict_do_update(
                index_elements=[table.c.membership_id, table.c.month],
                set_={"last_granted": grant, "total": table.c.total + grant},
            ).returning(table.c.membership_id, table.c.last_granted)
        return statement


_sql = per_dialect(_Statements)


def _capped(session: Session, month: date, wanted: dict[int, int], cap: int) -> dict[int, int]:
    """Reserve points under the monthly cap for several beneficiaries in one upsert.

    Returns what each may be paid (rows in ascending ids: no deadlocks).
    """
    if not wanted:
        return {}
    rows = [
        {"membership_id": membership_id, "month": month, "total": max(0, min(amount, cap)),
         "last_granted": max(0, min(amount, cap))}
        for membership_id, amount in sorted(wanted.items())
    ]
    result = session.connection().execute(_sql(session).reserve(int(cap)), rows)
    return {row[0]: row[1] for row in result}


def chain(session: Session, membership_id: int) -> list[int]:
    """Referrers of a member, nearest first, at most three (one prebuilt query)."""
    row = session.connection().execute(_sql(session).chain, {"membership_id": membership_id}).first()
    if row is None:
        return []
    return [ref for ref in row if ref is not None][:MAX_DEPTH]


def pay_rewards(session: Session, merchant: Merchant, purchase: Purchase, settings: dict) -> int:
    """Pay the referral rewards of one purchase inside its transaction; returns points paid.

    Exactly once per (purchase, beneficiary, depth): the reward row is inserted with
    ON CONFLICT DO NOTHING in the same transaction as the ledger posting, and only the rows
    inserted are paid. The monthly cap is reserved just before (under the cap rows' locks, held
    to the end of the transaction) so the rows go in with their amounts; a reservation whose
    reward row already existed is given back at once, so the cap counts only what is paid.
    """
    sql, connection = _sql(session), session.connection()
    referrers = chain(session, purchase.membership_id)
    wanted: list[tuple[int, int]] = []  # (beneficiary, depth)
    point_value = merchant.network.point_value_minor
    for depth, beneficiary in enumerate(referrers, start=1):
        if beneficiary == purchase.membership_id or any(beneficiary == b for b, _d in wanted):
            break  # never reward oneself or anyone twice, even through bad data
        wanted.append((beneficiary, depth))
    bonus = settings["signup_bonus"]
    if bonus and referrers:
        claimed = connection.execute(
            sql.claim_bonus, {"b_membership_id": purchase.membership_id, "b_purchase_id": purchase.id}
        ).rowcount
        if claimed:
            wanted.insert(0, (purchase.membership_id, 0))
    if not wanted:
        return 0
    month = month_of(purchase.created_at or utcnow())
    amounts = {
        (beneficiary, depth): bonus if depth == 0
        else level_amount(settings, depth, purchase.amount_paid, point_value)
        for beneficiary, depth in wanted
    }
    amounts = {key: amount for key, amount in amounts.items() if amount > 0}
    if not amounts:
        return 0
    grants = _capped(
        session, month, {b: amount for (b, d), amount in amounts.items() if d > 0}, settings["monthly_cap"]
    )
    pay = {(b, d): amount if d == 0 else grants.get(b, 0) for (b, d), amount in amounts.items()}
    now = utcnow()
    rows = [
        {"merchant_id": merchant.id, "purchase_id": purchase.id, "beneficiary_membership_id": beneficiary,
         "depth": depth, "amount": amount, "month": month, "created_at": now}
        for (beneficiary, depth), amount in pay.items()
    ]
    # One multi-row insert claims every reward; rows another worker already claimed come back
    # missing and are skipped, so nothing is paid twice.
    inserted = connection.execute(sql.claim, rows).all()
    claimed = {(row[1], row[2]): row[0] for row in inserted}
    for (beneficiary, depth), amount in sorted(pay.items()):
        if depth and amount and (beneficiary, depth) not in claimed:
            connection.execute(sql.release_cap, {"b_membership_id": beneficiary, "b_month": month,
                                                 "b_amount": amount})
    postings: list[Posting] = []
    for (beneficiary, depth), reward_id in sorted(claimed.items(), key=lambda item: item[0][1]):
        amount = pay[(beneficiary, depth)]
        if amount <= 0:
            continue
        reason = (
            LedgerReason(SIGNUP_BONUS, {"purchase": purchase.id}) if depth == 0
            else LedgerReason(FRIENDS_PURCHASE, {"purchase": purchase.id, "level": depth})
        )
        postings.append(Posting(beneficiary, merchant.id, "referral", amount, reason, source="referrals",
                                purchase_id=purchase.id, object_ref=f"referral:{reward_id}"))
    post(session, postings, purchase.created_at)
    return sum(p.amount for p in postings)


def undo_for_refund(session: Session, merchant: Merchant, purchase: Purchase) -> None:
    """The core reversed the ledger entries; give the cap back and free the sign-up bonus."""
    now = utcnow()
    for reward in session.scalars(
        select(Reward).where(Reward.purchase_id == purchase.id, Reward.reversed_at.is_(None))
    ).all():
        _release(session, reward, now)
    session.execute(
        update(ReferralLink)
        .where(ReferralLink.signup_bonus_purchase_id == purchase.id)
        .values(signup_bonus_purchase_id=None)
        .execution_options(synchronize_session=False)
    )


def _release(session: Session, reward: Reward, now: datetime) -> bool:
    done = session.execute(
        update(Reward).where(Reward.id == reward.id, Reward.reversed_at.is_(None)).values(reversed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if done and reward.depth and reward.amount:
        session.execute(
            update(MonthlyTotal)
            .where(MonthlyTotal.membership_id == reward.beneficiary_membership_id,
                   MonthlyTotal.month == reward.month)
            .values(total=func.max(MonthlyTotal.total - reward.amount, 0)
                    if session.get_bind().dialect.name == "sqlite"
                    else func.greatest(MonthlyTotal.total - reward.amount, 0))
            .execution_options(synchronize_session=False)
        )
    return bool(done)


def reverse_reward(session: Session, merchant: Merchant, reward_id: int) -> Reward:
    """The merchant takes a reward back (a guarded negative posting); commits."""
    reward = session.scalar(select(Reward).where(Reward.id == reward_id, Reward.merchant_id == merchant.id))
    if reward is None:
        raise NotFound(_("No such reward here."))
    if reward.reversed_at is not None or not reward.amount:
        raise Conflict(_("This reward has already been reversed."))
    with unit_of_work(session):
        if not _release(session, reward, utcnow()):
            raise Conflict(_("This reward has already been reversed."))
        original = session.scalar(
            select(LedgerEntry.id).where(LedgerEntry.object_ref == f"referral:{reward.id}",
                                         LedgerEntry.reverses_id.is_(None))
        )
        post(session, [Posting(
            reward.beneficiary_membership_id, merchant.id, "adjust", -reward.amount,
            LedgerReason(REVERSED, {"purchase": reward.purchase_id}),
            source="referrals", purchase_id=reward.purchase_id, reverses_id=original,
        )])
    session.refresh(reward)
    return reward


# --------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class Funnel:
    opened: int
    joined: int
    first_purchase: int
    held: int


class _FigureStatements:
    """The panel's and the card's read statements, built once per dialect (the pages run them
    on every view; composing them again each time cost more than running them)."""

    def __init__(self, dialect: str) -> None:
        opens, links, rewards = LinkOpen.__table__, ReferralLink.__table__, Reward.__table__
        purchases, members, users = Purchase.__table__, Membership.__table__, User.__table__
        merchant_id = bindparam("merchant_id")

        def count_links(status: str):
            return (select(func.count()).select_from(links)
                    .where(links.c.merchant_id == merchant_id, links.c.status == status).scalar_subquery())

        # The funnel and the cost in one statement of five scalar subqueries.
        self.panel = select(
            select(func.count()).select_from(opens).where(opens.c.merchant_id == merchant_id).scalar_subquery(),
            count_links("active"),
            select(func.count(func.distinct(links.c.referee_membership_id)))
            .select_from(links.join(purchases, purchases.c.membership_id == links.c.referee_membership_id))
            .where(links.c.merchant_id == merchant_id, links.c.status == "active", purchases.c.refunded_at.is_(None))
            .scalar_subquery(),
            count_links("held"),
            select(func.coalesce(func.sum(rewards.c.amount), 0))
            .where(rewards.c.merchant_id == merchant_id, rewards.c.reversed_at.is_(None)).scalar_subquery(),
        )
        # A member's code, points earned, whether a referrer brought them, and one row per friend
        # they brought (in the order the friends joined; one row of NULLs without friends).
        member_id = bindparam("membership_id")
        me, referrer, friend = members.alias("me"), members.alias("referrer"), members.alias("friend")
        codes = ReferralCode.__table__
        friends = links.join(friend, friend.c.id == links.c.referee_membership_id).join(
            users, users.c.id == friend.c.user_id)
        earned = (
            select(func.coalesce(func.sum(rewards.c.amount), 0))
            .where(rewards.c.beneficiary_membership_id == member_id, rewards.c.reversed_at.is_(None),
                   rewards.c.depth > 0)
            .scalar_subquery()
        )
        self.member = (
            select(codes.c.code, earned, referrer.c.id, users.c.name)
            .select_from(
                me.outerjoin(codes, codes.c.membership_id == me.c.id)
                .outerjoin(referrer, referrer.c.id == me.c.referrer_id)
                .outerjoin(friends, (links.c.referrer_membership_id == me.c.id) & (links.c.status == "active"))
            )
            .where(me.c.id == member_id)
            .order_by(links.c.created_at, links.c.id)
        )


_figures_sql = per_dialect(_FigureStatements)


def panel_figures(session: Session, merchant_id: int) -> tuple[Funnel, int]:
    """The dashboard panel's funnel and the points paid in rewards (not reversed), one statement."""
    opened, joined, bought, held, paid = session.connection().execute(
        _figures_sql(session).panel, {"merchant_id": merchant_id}
    ).one()
    return Funnel(opened or 0, joined or 0, bought or 0, held or 0), int(paid or 0)


def funnel(session: Session, merchant: Merchant) -> Funnel:
    return panel_figures(session, merchant.id)[0]


@dataclass(frozen=True)
class MemberReferrals:
    """What a member's card and portrait show: their code (None before it is made), the first
    names of the friends they brought, the points those earned them, and whether they joined
    through a friend's link."""

    code: str | None
    friends: list[str]
    earned: int
    referred: bool


def member_referrals(session: Session, membership_id: int) -> MemberReferrals:
    """``friends_of``, ``earned_by``, the code and the referrer of one member in one statement."""
    rows = session.connection().execute(
        _figures_sql(session).member, {"membership_id": membership_id}
    ).all()
    if not rows:
        return MemberReferrals(None, [], 0, False)
    code, earned, referrer_id, _name = rows[0]
    friends = [first_name(name) for *_rest, name in rows if name is not None]
    return MemberReferrals(code, friends, int(earned or 0), referrer_id is not None)


def cost(session: Session, merchant: Merchant) -> int:
    """Points paid in referral rewards and not reversed."""
    return session.scalar(
        select(func.coalesce(func.sum(Reward.amount), 0))
        .where(Reward.merchant_id == merchant.id, Reward.reversed_at.is_(None))
    )


def top_referrers(session: Session, merchant: Merchant, limit: int = 10):
    """(name, friends, points earned) of the members who brought most friends."""
    earned = (
        select(Reward.beneficiary_membership_id.label("mid"), func.sum(Reward.amount).label("points"))
        .where(Reward.merchant_id == merchant.id, Reward.reversed_at.is_(None), Reward.depth > 0)
        .group_by(Reward.beneficiary_membership_id).subquery()
    )
    return session.execute(
        select(User.name, func.count(ReferralLink.id), func.coalesce(func.max(earned.c.points), 0))
        .join(Membership, Membership.id == ReferralLink.referrer_membership_id)
        .join(User, User.id == Membership.user_id)
        .outerjoin(earned, earned.c.mid == ReferralLink.referrer_membership_id)
        .where(ReferralLink.merchant_id == merchant.id, ReferralLink.status == "active")
        .group_by(ReferralLink.referrer_membership_id, User.name)
        .order_by(func.count(ReferralLink.id).desc(), User.name)
        .limit(limit)
    ).all()


def held_links(session: Session, merchant: Merchant):
    referrer, friend = aliased(Membership), aliased(Membership)
    ref_user, friend_user = aliased(User), aliased(User)
    return session.execute(
        select(ReferralLink, ref_user.name, friend_user.name)
        .join(referrer, referrer.id == ReferralLink.referrer_membership_id)
        .join(ref_user, ref_user.id == referrer.user_id)
        .join(friend, friend.id == ReferralLink.referee_membership_id)
        .join(friend_user, friend_user.id == friend.user_id)
        .where(ReferralLink.merchant_id == merchant.id, ReferralLink.status == "held")
        .order_by(ReferralLink.created_at)
    ).all()


def recent_rewards(session: Session, merchant: Merchant, page: int = 1, per_page: int = 25):
    return session.execute(
        select(Reward, User.name)
        .join(Membership, Membership.id == Reward.beneficiary_membership_id)
        .join(User, User.id == Membership.user_id)
        .where(Reward.merchant_id == merchant.id, Reward.amount > 0)
        .order_by(Reward.created_at.desc(), Reward.id.desc())
        .limit(per_page).offset((page - 1) * per_page)
    ).all()


def first_name(name: str) -> str:
    return (name or "").strip().split(" ")[0] or "—"


def friends_of(session: Session, membership: Membership) -> list[str]:
    """First names of the friends a member brought (active links only)."""
    names = session.scalars(
        select(User.name)
        .join(Membership, Membership.user_id == User.id)
        .join(ReferralLink, ReferralLink.referee_membership_id == Membership.id)
        .where(ReferralLink.referrer_membership_id == membership.id, ReferralLink.status == "active")
        .order_by(ReferralLink.created_at)
    ).all()
    return [first_name(name) for name in names]


def earned_by(session: Session, membership: Membership) -> int:
    return session.scalar(
        select(func.coalesce(func.sum(Reward.amount), 0))
        .where(Reward.beneficiary_membership_id == membership.id, Reward.reversed_at.is_(None), Reward.depth > 0)
    )


def forget_addresses(session: Session, user_id: int) -> None:
    """Erasure: the joining address of the customer's referrals goes."""
    ids = select(Membership.id).where(Membership.user_id == user_id)
    session.execute(
        update(ReferralLink).where(ReferralLink.referee_membership_id.in_(ids)).values(ip=None)
        .execution_options(synchronize_session=False)
    )


def customer_data(session: Session, user_id: int) -> list[dict]:
    rows = session.execute(
        select(ReferralCode.code, Membership.id, Membership.merchant_id)
        .join(Membership, Membership.id == ReferralCode.membership_id)
        .where(Membership.user_id == user_id)
    ).all()
    return [
        {"merchant_id": merchant_id, "code": code,
         "friends": friends_of(session, session.get(Membership, mid)),
         "points_earned": earned_by(session, session.get(Membership, mid))}
        for code, mid, merchant_id in rows
    ]

"""Ledger reasons are data: every row's kind and parameters render in the reader's language, and a
kind that nobody can render is caught (by the code scan below, and loudly at display in tests)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from flask_babel import force_locale
from markupsafe import escape
from sqlalchemy import select

from webapp import ledger_reasons
from webapp.contracts import LedgerReason
from webapp.extensions import db
from webapp.models import LedgerEntry
from webapp.services import ledger, points
from webapp.services.ledger import Posting
from webapp.services.purchases import PurchaseDraft, record_purchase, refund_purchase

ROOT = Path(__file__).resolve().parents[2]


def _render_everywhere(kind: str, params) -> dict[str, str]:
    sentences = {}
    for locale in ("en", "ru"):
        with force_locale(locale):
            sentences[locale] = ledger_reasons.render(kind, params)
    return sentences


def test_every_registered_kind_renders_in_english_and_russian(app):
    kinds = ledger_reasons.reason_kinds()
    # The core's and those of the built-in plugins that post points.
    assert {
        "note",
        "redeem",
        "cashback",
        "refund",
        "expired",
        "welcome",
        "birthday",
        "imported",
    } <= set(kinds)
    assert {"surveys.reward", "surveys.apology", "referrals.reward", "group_deals.idea"} <= set(
        kinds
    )
    for name, kind in kinds.items():
        assert name == kind.kind
        assert "." not in name or name.split(".")[0] in app.extensions["neighbourly"].metas, name
        sentences = _render_everywhere(name, kind.example)
        for locale, sentence in sentences.items():
            assert sentence.strip() and "%(" not in sentence, (name, locale, sentence)
        if name != "note":  # someone's own words stay as written; every other kind is translated
            assert sentences["ru"] != sentences["en"], name


def test_core_sentences_read_as_before(app):
    refund = {
        "purchase": 12,
        "reversed": {"kind": "cashback", "params": {"purchase": 12, "rate_bp": 250}},
    }
    with force_locale("en"):
        assert (
            ledger_reasons.render("cashback", {"purchase": 12, "rate_bp": 250})
            == "Cashback 2.5% on purchase #12"
        )
        assert (
            ledger_reasons.render("refund", refund)
            == "Refund of purchase #12: Cashback 2.5% on purchase #12"
        )
        assert ledger_reasons.render("birthday", {"year": 2026}) == "Birthday bonus 2026"
    with force_locale("ru"):
        assert (
            ledger_reasons.render("refund", refund)
            == "Возврат покупки № 12: Кешбэк 2,5% за покупку № 12"
        )
        assert ledger_reasons.render("expired", {}) == "Баллы сгорели"


# --------------------------------------------------------------------------- the code posts only known kinds


def _string_constants(trees) -> dict[str, set[str]]:
    """Module-level ``NAME = "text"`` assignments of every scanned module, by name."""
    constants: dict[str, set[str]] = {}
    for tree in trees:
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        constants.setdefault(target.id, set()).add(node.value.value)
    return constants


def _kind_expressions(tree) -> list[ast.expr]:
    """The first argument of every ``LedgerReason(...)`` and every value given to a
    ``"reason_kind"`` key (rows written without ``Posting``)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = (
                node.func.attr
                if isinstance(node.func, ast.Attribute)
                else getattr(node.func, "id", "")
            )
            if name == "LedgerReason" and node.args:
                found.append(node.args[0])
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "reason_kind":
                    found.append(value)
    return found


def posted_kinds(paths) -> tuple[set[str], list[str]]:
    """(reason kinds the code writes, expressions that are not a literal or a named constant)."""
    trees = {path: ast.parse(path.read_text(encoding="utf-8")) for path in paths}
    constants = _string_constants(trees.values())
    kinds: set[str] = set()
    unresolved: list[str] = []
    for path, tree in trees.items():
        for expression in _kind_expressions(tree):
            if isinstance(expression, ast.Constant) and isinstance(expression.value, str):
                kinds.add(expression.value)
                continue
            name = (
                expression.attr
                if isinstance(expression, ast.Attribute)
                else getattr(expression, "id", None)
            )
            if name in constants:
                kinds |= constants[name]
            elif not (
                path.name == "contracts.py" or name in ("kind", "reversed_kind", "reason_kind")
            ):
                unresolved.append(f"{path.relative_to(ROOT)}:{expression.lineno}")
    return kinds, unresolved


def _sources():
    return [*sorted((ROOT / "webapp").rglob("*.py")), *sorted((ROOT / "plugins").rglob("*.py"))]


def test_every_reason_kind_the_code_writes_has_a_renderer(app):
    kinds, unresolved = posted_kinds(_sources())
    assert unresolved == [], (
        "give reason kinds as literals or module constants so they can be checked"
    )
    assert {
        "redeem",
        "cashback",
        "refund",
        "welcome",
        "surveys.reward",
        "referrals.signup",
    } <= kinds
    missing = kinds - set(ledger_reasons.reason_kinds())
    assert missing == set(), f"reason kinds written without a renderer: {sorted(missing)}"


def test_the_scan_finds_a_kind_without_a_renderer(app, tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        'STAMP = "stamps.tenth_coffee"\n'
        "def pay(Posting, LedgerReason):\n"
        '    return [Posting(1, 1, "reward", 5, LedgerReason(STAMP)), {"reason_kind": "stamps.bonus"}]\n',
        encoding="utf-8",
    )
    kinds, unresolved = posted_kinds([probe])
    assert unresolved == []
    assert kinds == {"stamps.tenth_coffee", "stamps.bonus"}
    assert kinds - set(ledger_reasons.reason_kinds()) == {"stamps.tenth_coffee", "stamps.bonus"}


def test_a_row_of_an_unknown_kind_fails_loudly_in_tests_and_shows_its_text_in_production(
    app,
    make_merchant,
    make_member,
):
    shop = make_merchant()
    member = make_member(shop)
    ledger.post(
        db.session,
        [
            Posting(
                member.id,
                shop.id,
                "reward",
                5,
                LedgerReason("stamps.tenth_coffee", {"text": "Tenth coffee"}),
            )
        ],
    )
    db.session.commit()
    entry = db.session.scalar(select(LedgerEntry).where(LedgerEntry.membership_id == member.id))
    with pytest.raises(ledger_reasons.UnknownReasonKind):
        ledger_reasons.render_entry(entry)
    app.extensions.pop("neighbourly_ledger_reasons")
    app.testing = False
    try:
        assert ledger_reasons.render_entry(entry) == "Tenth coffee"
    finally:
        app.testing = True
        app.extensions.pop("neighbourly_ledger_reasons")


# --------------------------------------------------------------------------- rows, end to end


def test_every_row_a_card_collects_reads_in_the_holders_language(
    app,
    client,
    make_merchant,
    make_member,
    make_user,
):
    shop = make_merchant(cashback_bp=250)
    user = make_user()
    member = make_member(shop, user=user)
    points.adjust_points(
        db.session, shop, member.id, 900, "Broken cup, sorry", shop.owner.id, "adj-1"
    )
    sale = record_purchase(
        db.session, shop, member, PurchaseDraft(member.id, 10000, 300, "sale-1")
    ).purchase
    refund_purchase(db.session, shop, sale.id, shop.owner.id)
    # Every other registered kind, as its example parameters, straight through the ledger.
    others = [
        Posting(
            member.id, shop.id, "reward", 1, LedgerReason(name, dict(kind.example)), source="probe"
        )
        for name, kind in ledger_reasons.reason_kinds().items()
        if name not in ("note", "redeem", "cashback", "refund")
    ]
    ledger.post(db.session, others)
    db.session.commit()

    stored = {kind for kind in db.session.scalars(select(LedgerEntry.reason_kind))}
    assert stored == set(ledger_reasons.reason_kinds())  # every kind has a row on this card
    client.login(user)
    for locale in ("en", "ru"):
        user.locale = locale
        db.session.commit()
        page = client.get(f"/wallet/cards/{member.id}").get_data(as_text=True)
        with force_locale(locale):
            expected = [
                ledger_reasons.render_entry(entry)
                for entry in db.session.scalars(select(LedgerEntry))
            ]
        for sentence in expected:
            assert str(escape(sentence)) in page, (locale, sentence)
    with force_locale("ru"):
        cashback_row = db.session.scalar(
            select(LedgerEntry).where(LedgerEntry.reason_kind == "cashback")
        )
        assert ledger_reasons.render_entry(cashback_row) == f"Кешбэк 2,5% за покупку № {sale.id}"

"""Shared by the survey services: limits, labels, a small upsert helper and the rewards other plugins offer."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from webapp.plugin_api import LedgerReasonKind, Merchant, RewardOption, hooks_for, upsert_insert

PAGE_SIZE = 25
MAX_REWARD = 100_000
MAX_QUESTIONS = 80
LOW_SCORE = 2  # ratings at or below this open a complaint thread

# The reasons this plugin writes on ledger rows, rendered in the reader's language.
SURVEY_REWARD = "surveys.reward"  # {"title": the survey's title, "survey": id}
APOLOGY_BONUS = "surveys.apology"  # points the owner gave when answering a complaint
LEDGER_REASONS = (
    LedgerReasonKind(
        SURVEY_REWARD, lambda p: _("Survey: %(title)s", title=p["title"]),
        {"title": "How did we do?", "survey": 3},
    ),
    LedgerReasonKind(APOLOGY_BONUS, lambda p: _("Apology bonus")),
)

KIND_LABELS = {
    "rating": _l("Rating 1-5"),
    "single": _l("Single choice"),
    "multiple": _l("Multiple choice"),
    "short": _l("Short text"),
    "long": _l("Long text"),
    "nps": _l("Recommend 0-10 (NPS)"),
}

# Starting points for a new survey: (kind, text, required, options).
TEMPLATES: dict[str, dict] = {
    "blank": {"title": _l("New survey"), "questions": []},
    "how_did_we_do": {
        "title": _l("How did we do?"),
        "questions": [
            ("rating", _l("How happy are you with your last visit?"), True, ""),
            ("nps", _l("How likely are you to recommend us to a friend?"), True, ""),
            ("long", _l("What could we do better?"), False, ""),
        ],
    },
    "sell_next": {
        "title": _l("What should we sell next?"),
        "questions": [
            ("short", _l("Which product would you like us to sell?"), True, ""),
            ("long", _l("Why would you buy it here?"), False, ""),
        ],
    },
    "competitors": {
        "title": _l("Where else do you shop for this, and why?"),
        "questions": [
            ("short", _l("Where else do you buy what you buy from us?"), True, ""),
            (
                "multiple", _l("Why do you shop there?"), False,
                "\n".join(str(x) for x in (_l("Lower prices"), _l("Closer to me"), _l("Wider choice"),
                                           _l("Longer opening hours"), _l("Better service"))),
            ),
            ("long", _l("What would make you buy it here instead?"), False, ""),
        ],
    },
}
TEMPLATE_LABELS = {
    "blank": _l("Blank survey"),
    "how_did_we_do": _l("How did we do?"),
    "sell_next": _l("What should we sell next? (proposals ranked by votes)"),
    "competitors": _l("Where else do you shop for this, and why?"),
}


def _upsert_nothing(session: Session, model, values: dict, index: list[str]) -> int:
    """INSERT ... ON CONFLICT DO NOTHING: returns 1 when a row was written, 0 when it existed."""
    table = model.__table__
    statement = upsert_insert(session)(table).values(**values).on_conflict_do_nothing(index_elements=index)
    # RETURNING, not rowcount: psycopg reports -1 rows for INSERT ... ON CONFLICT.
    return 0 if session.execute(statement.returning(table.c.id)).first() is None else 1


def reward_options(session: Session, merchant: Merchant) -> list[RewardOption]:
    """Rewards besides points other enabled plugins let this merchant give (a partner's certificate)."""
    found = hooks_for(merchant).neighbourly_collect_reward_options(merchant=merchant, session=session)
    return [option for options in found if options for option in options]

"""Surveys: the builder, responses and rewards, ratings and complaints.

One module per concept; every name is re-exported here, so ``from
plugins.surveys.services import X`` keeps working.
"""

from plugins.surveys.services.base import (
    KIND_LABELS,
    LEDGER_REASONS,
    LOW_SCORE,
    MAX_QUESTIONS,
    MAX_REWARD,
    PAGE_SIZE,
    TEMPLATE_LABELS,
    TEMPLATES,
    reward_options,
)

# The module's helpers, for code written against the single module (explicit re-exports).
from plugins.surveys.services.base import (
    _upsert_nothing as _upsert_nothing,
)
from plugins.surveys.services.builder import (
    _date as _date,
)
from plugins.surveys.services.builder import (
    _int as _int,
)
from plugins.surveys.services.builder import (
    add_question,
    clean_question,
    create_survey,
    delete_question,
    get_question,
    get_survey,
    list_surveys,
    move_question,
    set_status,
    update_question,
    update_settings,
)
from plugins.surveys.services.privacy import customer_data, erase_customer
from plugins.surveys.services.ratings import (
    RatingReport,
    answer_complaint,
    complaint_for_rating,
    customer_complaint,
    customer_complaints,
    customer_reply,
    format_duration,
    get_complaint,
    has_answered,
    latest_rating,
    list_complaints,
    open_complaints_count,
    panel_counts,
    rate_visit,
    rateable_purchase,
    rating_for,
    rating_report,
    resolve_complaint,
    send_apology_bonus,
    staff_purchase,
    time_to_first_answer,
    unrated_purchase,
    wallet_waiting,
)
from plugins.surveys.services.ratings import (
    _clean_message as _clean_message,
)
from plugins.surveys.services.responses import (
    _UNPAID as _UNPAID,
)
from plugins.surveys.services.responses import (
    QuestionResult,
    RewardsGiven,
    TextPage,
    active_membership,
    check_respondent,
    clean_answers,
    closed_reason,
    customer_answers,
    delete_my_answers,
    export_rows,
    find_response,
    in_audience,
    invite_after_purchase,
    invited_count,
    mark_emailed,
    member_status,
    my_responses,
    open_surveys_for,
    pay_waiting_rewards,
    results,
    reward_problem,
    reward_words,
    rewards_given,
    save_progress,
    saved_answers,
    submit,
    survey_by_token,
    text_answers,
)
from plugins.surveys.services.responses import (
    _answers_of as _answers_of,
)
from plugins.surveys.services.responses import (
    _pay_reward as _pay_reward,
)
from plugins.surveys.services.responses import (
    _start as _start,
)
from plugins.surveys.services.responses import (
    _write_answers as _write_answers,
)
from webapp.plugin_api import utcnow as utcnow  # callers read the clock as services.utcnow

__all__ = [
    "KIND_LABELS",
    "LEDGER_REASONS",
    "LOW_SCORE",
    "MAX_QUESTIONS",
    "MAX_REWARD",
    "PAGE_SIZE",
    "QuestionResult",
    "RatingReport",
    "RewardsGiven",
    "TEMPLATES",
    "TEMPLATE_LABELS",
    "TextPage",
    "active_membership",
    "add_question",
    "answer_complaint",
    "check_respondent",
    "clean_answers",
    "clean_question",
    "closed_reason",
    "complaint_for_rating",
    "create_survey",
    "customer_answers",
    "customer_complaint",
    "customer_complaints",
    "customer_data",
    "customer_reply",
    "delete_my_answers",
    "delete_question",
    "erase_customer",
    "export_rows",
    "find_response",
    "format_duration",
    "get_complaint",
    "get_question",
    "get_survey",
    "has_answered",
    "in_audience",
    "invite_after_purchase",
    "invited_count",
    "latest_rating",
    "list_complaints",
    "list_surveys",
    "mark_emailed",
    "member_status",
    "move_question",
    "my_responses",
    "open_complaints_count",
    "open_surveys_for",
    "panel_counts",
    "pay_waiting_rewards",
    "rate_visit",
    "rateable_purchase",
    "staff_purchase",
    "rating_for",
    "rating_report",
    "resolve_complaint",
    "results",
    "reward_options",
    "reward_problem",
    "reward_words",
    "rewards_given",
    "save_progress",
    "saved_answers",
    "send_apology_bonus",
    "set_status",
    "submit",
    "survey_by_token",
    "text_answers",
    "time_to_first_answer",
    "unrated_purchase",
    "wallet_waiting",
    "update_question",
    "update_settings",
]

"""Customer pages (ask with instant FAQ answers, the asker's threads) and staff pages (questions by
topic, threads, topics, the FAQ and the owner's figures)."""

from __future__ import annotations

from flask import current_app, flash, g, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required

from plugins.concierge import services
from plugins.concierge.text import linkify
from webapp.plugin_api import (
    NotFound,
    ValidationFailed,
    db,
    limiter,
    merchant_plugin_blueprint,
    render,
    see_other,
    staff_required,
    use_network_zone,
)

bp = merchant_plugin_blueprint("concierge", __name__, template_folder="templates")
bp.add_app_template_filter(linkify, "concierge_linkify")

DEFAULT_GUEST_LIMITS = "3 per minute;20 per day"
# The box asks at most every 300 ms while someone types; this bounds a script, not a person.
DEFAULT_SUGGEST_LIMITS = "120 per minute"


def _form(name: str, limit: int = 4000) -> str:
    return request.form.get(name, "")[:limit]


def _locale() -> str:
    return str(get_locale() or "en")


def _languages(merchant) -> list[str]:
    return [_locale(), merchant.network.default_locale]


# --------------------------------------------------------------------------- customers


def _public_merchant():
    merchant = g.plugin_merchant
    if merchant.status != "active":
        raise NotFound()
    use_network_zone(merchant.network)
    return merchant


def _ask_page(merchant, status=200, errors=None, form=None, matches=None, picked=None, block=None):
    mine = (
        services.customer_questions(db.session, current_user.id, merchant.id)
        if current_user.is_authenticated
        else []
    )
    return render(
        "concierge/ask.html",
        block=block,
        status=status,
        merchant=merchant,
        errors=errors or {},
        form=form or {},
        matches=matches,
        picked=picked,
        mine=mine,
        topics=services.topics(db.session, merchant.id),
        token=services.new_token(),
    )


@bp.route("/m/<merchant_slug>/ask")
def ask_page(merchant_slug: str):
    """Without JavaScript, "Find answers" submits here: the same search the htmx box runs."""
    merchant = _public_merchant()
    text = request.args.get("text", "")[: services.MAX_TEXT]
    matches = (
        services.faq_matches(db.session, merchant, text, _languages(merchant))
        if text.strip()
        else None
    )
    picked = None
    if request.args.get("picked"):
        try:
            picked = services.faq_entry(
                db.session, merchant.id, request.args.get("picked", "")[:12]
            )
        except NotFound:
            picked = None
    return _ask_page(merchant, form={"text": text}, matches=matches, picked=picked)


def _suggest_limits() -> str:
    return current_app.config.get("CONCIERGE_SUGGEST_LIMITS", DEFAULT_SUGGEST_LIMITS)


@bp.route("/m/<merchant_slug>/ask/suggest")
@limiter.limit(_suggest_limits, scope="concierge_suggestions")
def suggest(merchant_slug: str):
    """The FAQ answers matching what is typed so far (htmx, debounced by the box)."""
    merchant = _public_merchant()
    text = request.args.get("text", "")[: services.MAX_TEXT]
    matches = (
        services.faq_matches(db.session, merchant, text, _languages(merchant))
        if text.strip()
        else None
    )
    return render(
        "concierge/_suggestions.html",
        merchant=merchant,
        matches=matches,
        box=request.args.get("box", "")[:20],
    )


@bp.route("/m/<merchant_slug>/ask/faq/<int:entry_id>/pick", methods=["POST"])
def pick(merchant_slug: str, entry_id: int):
    merchant = _public_merchant()
    entry = services.pick_faq(db.session, merchant, entry_id)
    if request.headers.get("HX-Request") == "true":
        return render("concierge/_picked.html", merchant=merchant, entry=entry)
    flash(_("Glad it helped!"), "success")
    return see_other("concierge.ask_page", merchant_slug=merchant.slug, picked=entry.id)


def _guest_limits() -> str:
    return current_app.config.get("CONCIERGE_GUEST_LIMITS", DEFAULT_GUEST_LIMITS)


@bp.route("/m/<merchant_slug>/ask", methods=["POST"])
@limiter.limit(
    _guest_limits,
    methods=["POST"],
    exempt_when=lambda: current_user.is_authenticated,
    scope="concierge_guest_questions",
    deduct_when=lambda response: response.status_code == 303,
)
def ask(merchant_slug: str):
    merchant = _public_merchant()
    form = {name: _form(name) for name in ("text", "email", "topic", "notify", "token")}
    if current_user.is_authenticated:
        asker = services.Asker(user=current_user._get_current_object())
    else:
        asker = services.Asker(guest_email=form["email"])
    try:
        question = services.ask(
            db.session,
            merchant,
            asker,
            form["text"],
            topic_id=form["topic"] or None,
            notify=bool(form["notify"]),
            token=form["token"],
            locale=_locale(),
        )
    except ValidationFailed as error:
        return _ask_page(
            merchant, 422, error.details.get("errors", {"text": error.message}), form, block="ask"
        )
    if question.user_id is not None:
        flash(_("Your question is sent. We will answer here and in your wallet."), "success")
        return see_other("concierge.thread", merchant_slug=merchant.slug, question_id=question.id)
    flash(_("Your question is sent. The answer will come to your e-mail."), "success")
    return see_other("concierge.ask_page", merchant_slug=merchant.slug)


@bp.route("/m/<merchant_slug>/ask/<int:question_id>", methods=["GET", "POST"])
@login_required
def thread(merchant_slug: str, question_id: int):
    merchant = _public_merchant()
    question = services.customer_question(db.session, current_user.id, merchant.id, question_id)
    error = None
    if request.method == "POST":
        try:
            services.reply(
                db.session,
                merchant,
                question,
                current_user._get_current_object(),
                _form("text"),
                from_staff=False,
                token=_form("token"),
            )
        except ValidationFailed as failed:
            error = failed.message
        else:
            return see_other(
                "concierge.thread", merchant_slug=merchant.slug, question_id=question.id
            )
    services.mark_read(db.session, question)
    return render(
        "concierge/thread.html",
        status=422 if error else 200,
        merchant=merchant,
        question=question,
        error=error,
        token=services.new_token(),
        staff_view=False,
    )


# --------------------------------------------------------------------------- staff


def _role(merchant) -> str:
    return services.role_of(db.session, merchant.id, current_user.id) or "cashier"


@bp.route("/business/<merchant_slug>/questions/")
@staff_required("owner", "cashier")
def index(merchant):
    role = _role(merchant)
    shown = request.args.get("status", "open")
    if shown not in ("open", "answered", "closed"):
        shown = "open"
    questions = services.visible_questions(db.session, merchant, current_user.id, role, shown)
    figures = services.figures(db.session, merchant) if role == "owner" else None
    return render(
        "concierge/index.html",
        merchant=merchant,
        questions=questions,
        shown=shown,
        role=role,
        figures=figures,
    )


def _staff_thread(merchant, question, role, status=200, error=None):
    return render(
        "concierge/thread.html",
        status=status,
        merchant=merchant,
        question=question,
        error=error,
        token=services.new_token(),
        staff_view=True,
        role=role,
    )


@bp.route("/business/<merchant_slug>/questions/<int:question_id>", methods=["GET", "POST"])
@staff_required("owner", "cashier")
def staff_thread(merchant, question_id: int):
    role = _role(merchant)
    question = services.staff_question(db.session, merchant, current_user.id, role, question_id)
    if request.method == "POST":
        try:
            services.reply(
                db.session,
                merchant,
                question,
                current_user._get_current_object(),
                _form("text"),
                token=_form("token"),
            )
        except ValidationFailed as error:
            return _staff_thread(merchant, question, role, 422, error.message)
        flash(_("Your answer is sent."), "success")
        return see_other(
            "concierge.staff_thread", merchant_slug=merchant.slug, question_id=question.id
        )
    return _staff_thread(merchant, question, role)


@bp.route("/business/<merchant_slug>/questions/<int:question_id>/close", methods=["POST"])
@staff_required("owner", "cashier")
def close(merchant, question_id: int):
    question = services.staff_question(
        db.session, merchant, current_user.id, _role(merchant), question_id
    )
    services.close(db.session, merchant, question)
    flash(_("The question is closed."), "success")
    return see_other("concierge.index", merchant_slug=merchant.slug)


@bp.route("/business/<merchant_slug>/questions/messages/<int:message_id>/faq", methods=["POST"])
@staff_required("owner")
def to_faq(merchant, message_id: int):
    entry = services.faq_from_message(db.session, merchant, message_id)
    flash(_("The answer is now an FAQ entry; edit its question if you like."), "success")
    return see_other("concierge.faq_edit", merchant_slug=merchant.slug, entry_id=entry.id)


# --------------------------------------------------------------------------- owner: topics


def _topics_page(merchant, status=200, errors=None, form=None):
    return render(
        "concierge/topics.html",
        status=status,
        merchant=merchant,
        errors=errors or {},
        form=form or {},
        topics=services.topics(db.session, merchant.id),
        staff=services.staff(db.session, merchant.id),
    )


@bp.route("/business/<merchant_slug>/questions/topics", methods=["GET", "POST"])
@staff_required("owner")
def topics(merchant):
    if request.method == "GET":
        return _topics_page(merchant)
    form = {"name": _form("name", 200), "assignee": _form("assignee", 20)}
    try:
        services.save_topic(db.session, merchant, form["name"], form["assignee"])
    except ValidationFailed as error:
        return _topics_page(merchant, 422, {"new": error.message}, form)
    flash(_("The topic is saved."), "success")
    return see_other("concierge.topics", merchant_slug=merchant.slug)


@bp.route("/business/<merchant_slug>/questions/topics/<int:topic_id>", methods=["POST"])
@staff_required("owner")
def topic_edit(merchant, topic_id: int):
    try:
        services.save_topic(
            db.session, merchant, _form("name", 200), _form("assignee", 20), topic_id=topic_id
        )
    except ValidationFailed as error:
        return _topics_page(merchant, 422, {topic_id: error.message})
    flash(_("The topic is saved."), "success")
    return see_other("concierge.topics", merchant_slug=merchant.slug)


@bp.route("/business/<merchant_slug>/questions/topics/<int:topic_id>/delete", methods=["POST"])
@staff_required("owner")
def topic_delete(merchant, topic_id: int):
    services.delete_topic(db.session, merchant, topic_id)
    flash(_("The topic is deleted; its questions stay."), "success")
    return see_other("concierge.topics", merchant_slug=merchant.slug)


# --------------------------------------------------------------------------- owner: FAQ


def _faq_form_page(merchant, entry, form, errors, status=200):
    return render(
        "concierge/faq_edit.html",
        status=status,
        merchant=merchant,
        entry=entry,
        form=form,
        errors=errors,
        language_choices=current_app.config["LANGUAGES"],
    )


@bp.route("/business/<merchant_slug>/questions/faq", methods=["GET", "POST"])
@staff_required("owner")
def faq(merchant):
    if request.method == "GET":
        return render(
            "concierge/faq.html",
            merchant=merchant,
            entries=services.faq_entries(db.session, merchant.id),
        )
    form = {
        "question": _form("question"),
        "answer": _form("answer"),
        "language": _form("language", 10),
    }
    try:
        services.save_faq(db.session, merchant, form["question"], form["answer"], form["language"])
    except ValidationFailed as error:
        return _faq_form_page(merchant, None, form, error.details.get("errors", {}), 422)
    flash(_("The FAQ entry is saved."), "success")
    return see_other("concierge.faq", merchant_slug=merchant.slug)


@bp.route("/business/<merchant_slug>/questions/faq/new")
@staff_required("owner")
def faq_new(merchant):
    return _faq_form_page(merchant, None, {"language": merchant.network.default_locale}, {})


@bp.route("/business/<merchant_slug>/questions/faq/<int:entry_id>", methods=["GET", "POST"])
@staff_required("owner")
def faq_edit(merchant, entry_id: int):
    entry = services.faq_entry(db.session, merchant.id, entry_id)
    if request.method == "GET":
        form = {"question": entry.question, "answer": entry.answer, "language": entry.language}
        return _faq_form_page(merchant, entry, form, {})
    form = {
        "question": _form("question"),
        "answer": _form("answer"),
        "language": _form("language", 10),
    }
    try:
        services.save_faq(
            db.session,
            merchant,
            form["question"],
            form["answer"],
            form["language"],
            entry_id=entry.id,
        )
    except ValidationFailed as error:
        return _faq_form_page(merchant, entry, form, error.details.get("errors", {}), 422)
    flash(_("The FAQ entry is saved."), "success")
    return see_other("concierge.faq", merchant_slug=merchant.slug)


@bp.route("/business/<merchant_slug>/questions/faq/<int:entry_id>/delete", methods=["POST"])
@staff_required("owner")
def faq_delete(merchant, entry_id: int):
    services.delete_faq(db.session, merchant, entry_id)
    flash(_("The FAQ entry is deleted."), "success")
    return see_other("concierge.faq", merchant_slug=merchant.slug)

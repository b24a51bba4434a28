"""Owner pages (builder, results, ratings, complaints) and the customer's survey, rating and thread pages."""

from __future__ import annotations

from flask import Blueprint, abort, flash, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required

from plugins.surveys import services
from plugins.surveys.models import QUESTION_KINDS
from plugins.surveys.notify import notify_owner_of_complaint
from webapp.plugin_api import (
    Conflict,
    Merchant,
    ValidationFailed,
    csv_variant,
    db,
    is_enabled,
    merchant_plugin_blueprint,
    render,
    see_other,
    staff_required,
    unit_of_work,
)

bp = merchant_plugin_blueprint(
    "surveys", __name__, url_prefix="/business/<merchant_slug>/surveys", template_folder="templates"
)
customer_bp = Blueprint("surveys_public", __name__, url_prefix="/surveys", template_folder="templates")

SETTING_FIELDS = ("title", "intro", "reward_points", "reward_option", "audience", "audience_days", "audience_status",
                  "starts_on", "ends_on", "quota", "public")
QUESTION_FIELDS = ("kind", "text", "required", "choices")


def _form(names) -> dict[str, str]:
    return {name: request.form.get(name, "")[:5000] for name in names}


def _settings_form(survey) -> dict[str, str]:
    return {
        "title": survey.title, "intro": survey.intro, "reward_points": str(survey.reward_points),
        "reward_option": survey.reward_option,
        "audience": survey.audience, "audience_days": str(survey.audience_days or ""),
        "audience_status": survey.audience_status,
        "starts_on": survey.starts_on.isoformat() if survey.starts_on else "",
        "ends_on": survey.ends_on.isoformat() if survey.ends_on else "",
        "quota": str(survey.quota or ""), "public": "1" if survey.public else "",
    }


# --------------------------------------------------------------------------- owner: surveys


@bp.route("/")
@staff_required("owner")
def index(merchant):
    return render(
        "surveys/index.html", merchant=merchant, surveys=services.list_surveys(db.session, merchant),
        templates=services.TEMPLATE_LABELS, open_complaints=services.open_complaints_count(db.session, merchant),
    )


@bp.route("/new", methods=["POST"])
@staff_required("owner")
def create(merchant):
    try:
        survey = services.create_survey(db.session, merchant, request.form.get("template", ""))
    except ValidationFailed as error:
        flash(error.message, "error")
        return see_other("surveys.index", merchant_slug=merchant.slug)
    flash(_("Your survey is created as a draft. Adjust the questions, then open it."))
    return see_other("surveys.edit", merchant_slug=merchant.slug, survey_id=survey.id)


def _builder(merchant, survey, status=200, block=None, **context):
    context.setdefault("form", _settings_form(survey))
    context.setdefault("errors", {})
    context.setdefault("new_question", {"kind": "rating"})
    context.setdefault("question_errors", {})
    context.setdefault("editing", None)
    if block in (None, "settings_form"):
        context["reward_options"] = services.reward_options(db.session, merchant)
        context["reward_problem"] = services.reward_problem(db.session, merchant, survey)
    return render(
        "surveys/edit.html", block=block, status=status, merchant=merchant, survey=survey,
        statuses_on=is_enabled(merchant, "gamification"),
        kinds=[(kind, services.KIND_LABELS[kind]) for kind in QUESTION_KINDS], **context,
    )


@bp.route("/<int:survey_id>")
@staff_required("owner")
def edit(merchant, survey_id: int):
    survey = services.get_survey(db.session, merchant, survey_id)
    editing = request.args.get("question", type=int)
    return _builder(merchant, survey, editing=editing)


@bp.route("/<int:survey_id>/settings", methods=["POST"])
@staff_required("owner")
def settings(merchant, survey_id: int):
    survey = services.get_survey(db.session, merchant, survey_id)
    form = _form(SETTING_FIELDS)
    try:
        services.update_settings(db.session, merchant, survey_id, form)
    except ValidationFailed as error:
        return _builder(merchant, survey, 422, "settings_form", form=form, errors=error.details.get("errors", {}))
    flash(_("The survey settings are saved."))
    return see_other("surveys.edit", merchant_slug=merchant.slug, survey_id=survey.id)


def _question(merchant, survey_id: int, question_id: int):
    question = services.get_question(db.session, merchant, question_id)
    if question.survey_id != survey_id:
        abort(404)
    return question


def _questions_answer(merchant, survey, status=200, **context):
    """htmx gets the re-rendered question list; a plain form goes back to the builder."""
    if request.headers.get("HX-Request") == "true" or status != 200:
        db.session.refresh(survey)
        return _builder(merchant, survey, status, "questions", **context)
    return see_other("surveys.edit", merchant_slug=merchant.slug, survey_id=survey.id)


@bp.route("/<int:survey_id>/questions", methods=["POST"])
@staff_required("owner")
def add_question(merchant, survey_id: int):
    survey = services.get_survey(db.session, merchant, survey_id)
    form = _form(QUESTION_FIELDS)
    try:
        services.add_question(db.session, merchant, survey_id, form)
    except ValidationFailed as error:
        return _questions_answer(merchant, survey, 422, new_question=form,
                                 question_errors=error.details.get("errors", {}) or {"text": error.message})
    return _questions_answer(merchant, survey)


@bp.route("/<int:survey_id>/questions/<int:question_id>", methods=["POST"])
@staff_required("owner")
def update_question(merchant, survey_id: int, question_id: int):
    question = _question(merchant, survey_id, question_id)
    survey = question.survey
    form = _form(QUESTION_FIELDS)
    try:
        services.update_question(db.session, merchant, question_id, form)
    except ValidationFailed as error:
        return _questions_answer(merchant, survey, 422, editing=question_id, edit_form=form,
                                 question_errors=error.details.get("errors", {}))
    return _questions_answer(merchant, survey)


@bp.route("/<int:survey_id>/questions/<int:question_id>/delete", methods=["POST"])
@staff_required("owner")
def delete_question(merchant, survey_id: int, question_id: int):
    _question(merchant, survey_id, question_id)
    survey = services.delete_question(db.session, merchant, question_id)
    return _questions_answer(merchant, survey)


@bp.route("/<int:survey_id>/questions/<int:question_id>/move", methods=["POST"])
@staff_required("owner")
def move_question(merchant, survey_id: int, question_id: int):
    _question(merchant, survey_id, question_id)
    survey = services.move_question(db.session, merchant, question_id, request.form.get("direction", ""))
    return _questions_answer(merchant, survey)


@bp.route("/<int:survey_id>/status", methods=["POST"])
@staff_required("owner")
def set_status(merchant, survey_id: int):
    try:
        survey = services.set_status(db.session, merchant, survey_id, request.form.get("status", ""))
    except ValidationFailed as error:
        flash(error.message, "error")
        return see_other("surveys.edit", merchant_slug=merchant.slug, survey_id=survey_id)
    flash(_("The survey is open: customers are invited after their next purchase.") if survey.status == "open"
          else _("The survey is closed."))
    return see_other("surveys.edit", merchant_slug=merchant.slug, survey_id=survey_id)


@bp.route("/<int:survey_id>/preview")
@staff_required("owner")
def preview(merchant, survey_id: int):
    survey = services.get_survey(db.session, merchant, survey_id)
    return render("surveys/preview.html", merchant=merchant, survey=survey, saved={}, errors={})


@bp.route("/<int:survey_id>/results")
@staff_required("owner")
def results(merchant, survey_id: int):
    survey = services.get_survey(db.session, merchant, survey_id)
    search = request.args.get("q", "")[:100]
    texts = services.text_answers(db.session, survey, search, request.args.get("page", 1, type=int) or 1)
    invited = services.invited_count(db.session, survey)
    return render(
        "surveys/results.html", block="texts", merchant=merchant, survey=survey, search=search, texts=texts,
        results=services.results(db.session, survey), invited=invited,
        rewards=services.rewards_given(db.session, survey),
        rate=round(100 * survey.completed_count / invited) if invited else None,
    )


@bp.route("/<int:survey_id>/export.csv")
@staff_required("owner")
def export(merchant, survey_id: int):
    """The completed responses: for people in the reader's language (``?format=machine`` for
    programs: stable English headers, UTC times; see ``webapp.csvfiles.CsvVariant``)."""
    survey = services.get_survey(db.session, merchant, survey_id)
    variant = csv_variant(request.args.get("format"), str(get_locale() or "en"))
    return variant.response(services.export_rows(db.session, survey, variant), f"survey-{survey.id}.csv", stream=False)


# --------------------------------------------------------------------------- owner: ratings, complaints


@bp.route("/ratings")
@staff_required("owner")
def ratings(merchant):
    complaints = services.list_complaints(db.session, merchant)
    return render(
        "surveys/ratings.html", merchant=merchant, report=services.rating_report(db.session, merchant),
        complaints=complaints, duration=lambda c: services.format_duration(services.time_to_first_answer(c)),
    )


def _complaint_page(merchant, complaint, status=200, block=None, **context):
    context.setdefault("errors", {})
    context.setdefault("form", {})
    return render(
        "surveys/complaint.html", block=block, status=status, merchant=merchant, complaint=complaint,
        waited=services.format_duration(services.time_to_first_answer(complaint)), **context,
    )


@bp.route("/complaints/<int:complaint_id>")
@staff_required("owner")
def complaint(merchant, complaint_id: int):
    return _complaint_page(merchant, services.get_complaint(db.session, merchant, complaint_id))


@bp.route("/complaints/<int:complaint_id>/answer", methods=["POST"])
@staff_required("owner")
def answer_complaint(merchant, complaint_id: int):
    found = services.get_complaint(db.session, merchant, complaint_id)
    body = request.form.get("body", "")[:5000]
    try:
        services.answer_complaint(db.session, merchant, current_user, complaint_id, body)
    except ValidationFailed as error:
        return _complaint_page(merchant, found, 422, "answer_form", form={"body": body},
                               errors=error.details.get("errors", {}))
    flash(_("Your answer is sent. The customer sees it on their card."))
    return see_other("surveys.complaint", merchant_slug=merchant.slug, complaint_id=complaint_id)


@bp.route("/complaints/<int:complaint_id>/bonus", methods=["POST"])
@staff_required("owner")
def bonus(merchant, complaint_id: int):
    found = services.get_complaint(db.session, merchant, complaint_id)
    try:
        paid = services.send_apology_bonus(db.session, merchant, complaint_id, request.form.get("points"))
    except ValidationFailed as error:
        return _complaint_page(merchant, found, 422, "bonus_form", bonus_errors=error.details.get("errors", {}),
                               bonus_form={"points": request.form.get("points", "")[:20]})
    flash(_("The apology bonus is on the customer's card.") if paid
          else _("An apology bonus was already sent for this complaint."))
    return see_other("surveys.complaint", merchant_slug=merchant.slug, complaint_id=complaint_id)


@bp.route("/complaints/<int:complaint_id>/resolve", methods=["POST"])
@staff_required("owner")
def resolve(merchant, complaint_id: int):
    services.resolve_complaint(db.session, merchant, complaint_id)
    flash(_("The complaint is marked resolved."))
    return see_other("surveys.complaint", merchant_slug=merchant.slug, complaint_id=complaint_id)


# --------------------------------------------------------------------------- customers


def _enabled_survey(token: str):
    survey = services.survey_by_token(db.session, token)
    if not is_enabled(db.session.get(Merchant, survey.merchant_id), "surveys"):
        abort(404)
    return survey


@customer_bp.route("/s/<token>", methods=["GET", "POST"])
@login_required
def answer(token: str):
    survey = _enabled_survey(token)
    merchant = db.session.get(Merchant, survey.merchant_id)
    membership = services.check_respondent(db.session, survey, current_user)
    response = services.find_response(db.session, survey, current_user)
    context = {"survey": survey, "merchant": merchant, "membership": membership, "response": response,
               "errors": {}}
    if response is not None and response.status == "completed":
        return render("surveys/answer.html", **context, saved={}, done=True)
    reason = services.closed_reason(survey)
    if reason:
        return render("surveys/answer.html", **context, saved={}, closed=reason, status=409 if request.method == "POST" else 200)
    if request.method == "GET":
        saved = services.saved_answers(db.session, response)
        problem = services.reward_problem(db.session, merchant, survey)
        return render("surveys/answer.html", **context, saved=_saved_values(saved), reward_problem=problem)
    form = {key: [value[:10000] for value in values] for key, values in request.form.to_dict(flat=False).items()}
    saved_input = {key[1:]: values for key, values in form.items() if key.startswith("q")}
    try:
        if request.form.get("action") == "save":
            services.save_progress(db.session, survey, current_user, form)
            flash(_("Your answers are saved. Come back any time to finish."))
        else:
            services.submit(db.session, survey, current_user, form)
            flash(_("Thank you for your answers!"))
    except ValidationFailed as error:
        return render("surveys/answer.html", block="answer_form", status=422, **{**context, "errors": error.details.get("errors", {})},
                      saved=saved_input, message=error.message)
    except Conflict as error:
        return render("surveys/answer.html", block="answer_form", status=409, **context, saved=saved_input,
                      message=error.message)
    return see_other("surveys_public.answer", token=survey.token)


def _saved_values(saved) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for question_id, item in saved.items():
        if item.number is not None and not item.text:
            values[str(question_id)] = [str(item.number)]
        else:
            values[str(question_id)] = item.text.split("\n") if item.text else []
    return values


@customer_bp.route("/mine")
@login_required
def mine():
    return render("surveys/mine.html", responses=services.my_responses(db.session, current_user))


@customer_bp.route("/mine/<int:response_id>/delete", methods=["POST"])
@login_required
def delete_answers(response_id: int):
    services.delete_my_answers(db.session, current_user, response_id)
    flash(_("Your answers are deleted. The reward you received stays yours."))
    return see_other("surveys_public.mine")


@customer_bp.route("/rate/<int:purchase_id>", methods=["GET", "POST"])
@login_required
def rate(purchase_id: int):
    at_till = services.staff_purchase(db.session, current_user, purchase_id)
    if at_till is not None:  # staff scanned or opened the customer's link: their receipt instead
        flash(_("This link is for the customer: they scan the QR code to rate the visit."))
        return see_other("cashier.purchase_detail", merchant_slug=at_till.merchant.slug, purchase_id=purchase_id)
    purchase = services.rateable_purchase(db.session, current_user, purchase_id)
    if not is_enabled(purchase.merchant, "surveys"):
        abort(404)
    rating = services.rating_for(db.session, purchase.id)
    if request.method == "GET" or rating is not None:
        return render("surveys/rate.html", purchase=purchase, rating=rating, form={}, errors={},
                      complaint=rating and services.complaint_for_rating(db.session, rating.id))
    form = {"score": request.form.get("score", "")[:5], "comment": request.form.get("comment", "")[:5000]}
    try:
        rating = services.rate_visit(db.session, current_user, purchase.id, form["score"], form["comment"])
    except ValidationFailed as error:
        return render("surveys/rate.html", block="rate_form", status=422, purchase=purchase, rating=None,
                      form=form, errors=error.details.get("errors", {}), complaint=None)
    except Conflict as error:
        flash(error.message)
        return see_other("surveys_public.rate", purchase_id=purchase.id)
    found = services.complaint_for_rating(db.session, rating.id)
    if found is not None:
        _notify_owner(purchase.merchant, found, rating)
        flash(_("We are sorry. %(merchant)s has been told and will answer you here.", merchant=purchase.merchant.name))
        return see_other("surveys_public.complaint", complaint_id=found.id)
    flash(_("Thank you for rating your visit!"))
    return see_other("surveys_public.rate", purchase_id=purchase.id)


def _notify_owner(merchant, found, rating) -> None:
    with unit_of_work(db.session):  # the e-mails are outbox rows: they leave once committed
        notify_owner_of_complaint(merchant, found, rating)


@customer_bp.route("/complaints/<int:complaint_id>", methods=["GET", "POST"], endpoint="complaint")
@login_required
def complaint_thread(complaint_id: int):
    found = services.customer_complaint(db.session, current_user, complaint_id)
    if request.method == "POST":
        body = request.form.get("body", "")[:5000]
        try:
            services.customer_reply(db.session, current_user, complaint_id, body)
        except ValidationFailed as error:
            return render("surveys/customer_complaint.html", block="reply_form", status=422, complaint=found,
                          merchant=db.session.get(Merchant, found.merchant_id),
                          form={"body": body}, errors=error.details.get("errors", {}))
        flash(_("Your message is sent."))
        return see_other("surveys_public.complaint", complaint_id=complaint_id)
    return render("surveys/customer_complaint.html", complaint=found, form={}, errors={},
                  merchant=db.session.get(Merchant, found.merchant_id))


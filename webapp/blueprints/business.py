"""Merchant back office: applying to a network, dashboard, customers, settings, photos and staff."""

from __future__ import annotations

from babel.dates import get_day_names
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_login import current_user, login_required
from sqlalchemy import select

from webapp import outbox
from webapp.csvfiles import csv_variant
from webapp.errors import Conflict, Forbidden, NeighbourlyError, NotFound, ValidationFailed
from webapp.extensions import db
from webapp.formatting import file_size, minor_to_decimal, parse_money
from webapp.mail import in_recipient_language, send_email
from webapp.models import Merchant, Network
from webapp.models.base import utcnow
from webapp.plugins import hooks_for, sorted_by_order
from webapp.services import (
    accounts,
    customers,
    exports,
    imports,
    ledger,
    merchants,
    photos,
    price_items,
    staff,
)
from webapp.services import hours as hours_service
from webapp.services import points as points_service
from webapp.templating import gettext as _  # the catalogue looked up once a request
from webapp.timezones import network_zone
from webapp.unit_of_work import unit_of_work
from webapp.web import is_fragment_request, public_url, render, see_other, staff_required

bp = Blueprint("business", __name__, url_prefix="/business")

BLANK_PRICE_ROWS = 2
MORE_PRICE_ROWS = 3
HISTORY_LIMIT = 50


def _weekday_names() -> list[str]:
    """Monday to Sunday in the page's language."""
    names = get_day_names("wide", locale=get_locale() or "en")
    return [names[day] for day in range(7)]


def _categories() -> list[tuple[str, str]]:
    """Category choices with translated labels (the keys are stored)."""
    return [(key, _(label)) for key, label in merchants.CATEGORIES.items()]


# --------------------------------------------------------------------------- home and applying


def _home(status: int = 200, form: dict | None = None, errors: dict | None = None):
    staff = merchants.staff_merchants(db.session, current_user.id)
    return render(
        "business/home.html",
        block="apply",
        status=status,
        staff_merchants=staff,
        show_apply=not staff or any(role == "owner" for _merchant, role in staff),
        operated=merchants.operated_networks(db.session, current_user),
        networks=merchants.all_networks(db.session),
        categories=_categories(),
        form=form or {"cashback": "5", "share": "50"},
        errors=errors or {},
    )


@bp.route("/")
@login_required
def home():
    return _home()


@bp.route("/apply", methods=["POST"])
@login_required
def apply():
    """A business owner applies to join a network; the operator decides later."""
    form = request.form
    errors: dict[str, str] = {}
    network = None
    network_id = form.get("network", "")
    if network_id.isdigit():
        network = db.session.get(Network, int(network_id))
    if network is None:
        errors["network"] = _("Choose the network you want to join.")
    try:
        cashback_bp = merchants.parse_cashback_bp(form.get("cashback"))
    except ValidationFailed as error:
        errors["cashback"] = error.message
    try:
        share = merchants.parse_points_share_pct(form.get("share"))
    except ValidationFailed as error:
        errors["share"] = error.message
    if not form.get("name", "").strip():
        errors["name"] = _("Enter the business name.")
    if not errors:
        try:
            merchant = merchants.apply_to_network(
                db.session, current_user, network,
                name=form.get("name", ""), category=form.get("category", ""),
                description=form.get("description", ""), address=form.get("address", ""),
                opening_hours=form.get("opening_hours", ""), phone=form.get("phone", ""),
                cashback_bp=cashback_bp, max_points_share_pct=share,
            )
        except ValidationFailed as error:
            errors["form"] = error.message
        else:
            flash(
                _("%(name)s has applied to join %(network)s. The network's operator will review it; "
                  "you will see the decision here.", name=merchant.name, network=network.name),
                "success",
            )
            return see_other("business.home")
    return _home(status=422, form=form.to_dict(), errors=errors)


# --------------------------------------------------------------------------- dashboard


@bp.route("/<merchant_slug>/dashboard")
@staff_required("owner")
def dashboard(merchant: Merchant):
    """Key figures (the core's own panel) and every enabled plugin's panels, in order."""
    panels = sorted_by_order(
        hooks_for(merchant).neighbourly_collect_dashboard_panels(merchant=merchant)
    )
    return render(
        "business/dashboard.html", merchant=merchant, panels=panels,
        backlog=outbox.backlog(db.session, merchant_id=merchant.id),
    )


@bp.route("/<merchant_slug>/dashboard/expiry")
@staff_required("owner")
def expiry_panel(merchant: Merchant):
    """The 12-month expiry forecast panel (server-rendered SVG), loaded after the dashboard."""
    return render(
        "business/_expiry_forecast.html", merchant=merchant,
        forecast=points_service.expiry_forecast(db.session, merchant),
        policy=points_service.policy_text(merchant),
    )


# --------------------------------------------------------------------------- customers


# Endpoint names are part of the core nav contract (core_hooks links to them).
@bp.route("/<merchant_slug>/customers", endpoint="customers")
@staff_required("owner")
def customers_view(merchant: Merchant):
    query = request.args.get("q", "")[: customers.MAX_QUERY_LENGTH]
    sort = request.args.get("sort", customers.DEFAULT_SORT)
    if sort not in customers.SORTS:
        sort = customers.DEFAULT_SORT
    page = customers.search_customers(
        db.session, merchant, query=query, sort=sort, page=customers.clamp_page(request.args.get("page"))
    )
    return render(
        "business/customers.html", block="results", merchant=merchant, page=page, q=query,
        sort=sort, sorts=_sort_labels(),
    )


def _sort_labels() -> list[tuple[str, str]]:
    return [
        ("joined", _("Newest members")),
        ("name", _("Name")),
        ("spend", _("Spend")),
        ("visits", _("Visits")),
        ("balance", _("Points balance")),
        ("last_visit", _("Last visit")),
    ]


@bp.route("/<merchant_slug>/customers/<int:membership_id>")
@staff_required("owner")
def customer(merchant: Merchant, membership_id: int):
    """A customer's portrait; another merchant's membership answers 404."""
    membership = customers.membership_for(db.session, merchant, membership_id)
    if membership is None:
        abort(404)
    page = customers.customer_purchases(
        db.session, merchant, membership, page=customers.clamp_page(request.args.get("page"))
    )
    return _portrait(merchant, membership, page)


def _portrait(merchant: Merchant, membership, page, status: int = 200, block: str | None = "purchases",
              adjust_form: dict | None = None, adjust_errors: dict | None = None, adjusted: str | None = None):
    from webapp.timezones import network_zone

    zones = {membership.id: network_zone(merchant.network)}
    return render(
        "business/customer.html",
        block=block,
        status=status,
        merchant=merchant,
        membership=membership,
        purchases=page,
        history=ledger.history(db.session, membership.id, limit=HISTORY_LIMIT),
        average_check=customers.average_check(membership),
        adjustments=points_service.adjustments(db.session, merchant, membership.id),
        adjust_form=adjust_form or {"direction": "add", "points": "", "reason": "",
                                    "key": points_service.new_form_key()},
        adjust_errors=adjust_errors or {},
        adjusted=adjusted,
        next_expiry=points_service.next_expiries(db.session, [membership.id], zones).get(membership.id),
    )


@bp.route("/<merchant_slug>/customers/<int:membership_id>/adjust", methods=["POST"])
@staff_required("owner")
def adjust(merchant: Merchant, membership_id: int):
    """Add or remove points with a reason; the customer sees the reason, the owner the audit trail."""
    membership = customers.membership_for(db.session, merchant, membership_id)
    if membership is None:
        abort(404)
    form = {
        "direction": request.form.get("direction", "add"),
        "points": request.form.get("points", "")[:20].strip(),
        "reason": request.form.get("reason", "")[:400],
        "key": request.form.get("key", "")[:80],
    }
    errors: dict[str, str] = {}
    amount = 0
    try:
        amount = int(form["points"].replace(" ", "").replace("\u00a0", ""))
        if amount <= 0:
            raise ValueError
    except ValueError:
        errors["points"] = _("Enter a whole number of points greater than zero.")
    if form["direction"] not in ("add", "remove"):
        errors["direction"] = _("Choose whether to add or remove points.")
    if not errors:
        try:
            points_service.adjust_points(
                db.session, merchant, membership.id, amount if form["direction"] == "add" else -amount,
                form["reason"], current_user.id, form["key"],
            )
        except ValidationFailed as error:
            errors[str(error.details.get("field", "form"))] = error.message
    if errors:
        db.session.refresh(membership)
        page = customers.customer_purchases(db.session, merchant, membership)
        return _portrait(merchant, membership, page, status=422, block=None,
                         adjust_form=form, adjust_errors=errors)
    message = _("The points were changed; the customer sees the reason in their history.")
    flash(message, "success")
    return see_other("business.customer", merchant_slug=merchant.slug, membership_id=membership.id,
                     _anchor="adjust")


# --------------------------------------------------------------------------- settings


def _blank_row() -> dict:
    return {"id": "", "name": "", "price": "", "category": "", "photo": None}


def _price_rows_from_merchant(merchant: Merchant, blanks: int = BLANK_PRICE_ROWS) -> list[dict]:
    currency = merchant.network.currency
    rows = [
        {"id": str(item.id), "name": item.name, "price": str(minor_to_decimal(item.price, currency)),
         "category": item.category, "photo": item.photo_filename}
        for item in price_items.items_of(db.session, merchant)
    ]
    return rows + [_blank_row() for _index in range(blanks)]


def _hours_rows(merchant: Merchant) -> list[dict]:
    known = hours_service.hours_of(merchant)
    rows = []
    for weekday in range(7):
        day = known.get(weekday)
        rows.append({
            "weekday": weekday, "closed": day is None,
            "opens": hours_service.clock(day[0]) if day else "",
            "closes": hours_service.clock(day[1]) if day else "",
        })
    return rows


def _settings(merchant: Merchant, block: str | None = None, status: int = 200, **overrides):
    context = {
        "profile": {
            "name": merchant.name, "category": merchant.category,
            "description": merchant.description, "address": merchant.address,
            "phone": merchant.phone, "opening_hours": merchant.opening_hours,
        },
        "price_rows": _price_rows_from_merchant(merchant),
        "hours_rows": _hours_rows(merchant),
        "weekdays": _weekday_names(),
        "rates": {
            "cashback": f"{merchant.cashback_bp / 100:g}",
            "share": str(merchant.max_points_share_pct),
        },
        "lifecycle": {
            "welcome_bonus": str(merchant.welcome_bonus_points),
            "birthday_bonus": str(merchant.birthday_bonus_points),
            "birthday_days": str(merchant.birthday_bonus_days),
            "expiry_mode": merchant.points_expiry_mode,
            "expiry_months": str(merchant.points_expiry_months),
        },
        "expiry_month_choices": points_service.EXPIRY_MONTH_CHOICES,
        "errors": {},
        "saved": None,
        "photos": list(merchant.photos),
        "max_photos": photos.MAX_PHOTOS,
        "max_photo_size": file_size(current_app.config["MAX_PHOTO_BYTES"]),
        "categories": _categories(),
    }
    context.update(overrides)
    return render("business/settings.html", block=block, status=status, merchant=merchant, **context)


def _saved(merchant: Merchant, block: str, message: str):
    """After a save: htmx gets the section back with a note; a plain form gets a 303."""
    if is_fragment_request():
        db.session.refresh(merchant)
        return _settings(merchant, block=block, saved=block, saved_message=message)
    flash(message, "success")
    return see_other("business.settings", merchant_slug=merchant.slug, _anchor=f"settings-{block}")


@bp.route("/<merchant_slug>/settings")
@staff_required("owner")
def settings(merchant: Merchant):
    return _settings(merchant)


@bp.route("/<merchant_slug>/settings/profile", methods=["POST"])
@staff_required("owner")
def save_profile(merchant: Merchant):
    form = request.form
    profile = {key: form.get(key, "") for key in
               ("name", "category", "description", "address", "phone")}
    # The note on the hours is edited with the hours; an older form may still send it.
    profile["opening_hours"] = form.get("opening_hours", merchant.opening_hours)
    try:
        merchants.update_profile(db.session, merchant, **profile)
    except ValidationFailed as error:
        field_name = str(error.details.get("field", "form"))
        return _settings(merchant, block="profile", status=422, profile=profile,
                         errors={field_name: error.message})
    return _saved(merchant, "profile", _("The profile is saved."))


@bp.route("/<merchant_slug>/settings/prices", methods=["POST"])
@staff_required("owner")
def save_prices(merchant: Merchant):
    """Save the price list in the order shown. "More rows" and the arrows only re-render the form
    (rows moved, blank rows added); nothing is stored until "Save"."""
    currency = merchant.network.currency
    names = request.form.getlist("item_name")[: price_items.MAX_ITEMS + MORE_PRICE_ROWS * 4]
    count = len(names)

    def column(key: str) -> list[str]:
        values = request.form.getlist(key)[:count]
        return values + [""] * (count - len(values))

    ids, prices, categories = column("item_id"), column("item_price"), column("item_category")
    photos_by_id = {str(item.id): item.photo_filename for item in price_items.items_of(db.session, merchant)}
    typed = [
        {"id": ids[i] if ids[i] in photos_by_id else "", "name": names[i], "price": prices[i],
         "category": categories[i], "photo": photos_by_id.get(ids[i])}
        for i in range(count)
    ]
    removed = set(request.form.getlist("remove"))
    action = request.form.get("action", "save")
    if action == "more" or action.startswith(("up-", "down-")):
        rows = [row for index, row in enumerate(typed) if str(index) not in removed]
        if action == "more":
            rows += [_blank_row() for _index in range(MORE_PRICE_ROWS)]
        else:
            direction, _dash, number = action.partition("-")
            index = int(number) if number.isdigit() else -1
            other = index - 1 if direction == "up" else index + 1
            if 0 <= index < len(rows) and 0 <= other < len(rows):
                rows[index], rows[other] = rows[other], rows[index]
        return _settings(merchant, block="prices", price_rows=rows)
    errors: dict[str, str] = {}
    kept, entries = [], []
    for index, row in enumerate(typed):
        name, price_text = row["name"].strip(), row["price"].strip()
        category = row["category"].strip()
        if str(index) in removed or (not name and not price_text and not category):
            continue
        kept.append(row)
        position = len(kept) - 1
        if not name:
            errors[f"name-{position}"] = _("Enter a name for this price.")
            continue
        if len(name) > price_items.MAX_NAME:
            errors[f"name-{position}"] = _("At most 120 characters.")
            continue
        if len(category) > price_items.MAX_CATEGORY:
            errors[f"category-{position}"] = _(
                "A category has at most %(limit)s characters.", limit=price_items.MAX_CATEGORY
            )
            continue
        try:
            price = parse_money(price_text, currency)
        except ValueError as error:
            errors[f"price-{position}"] = _(str(error))
            continue
        if price < 0 or price > price_items.MAX_PRICE:
            errors[f"price-{position}"] = _("Enter a price of zero or more.")
            continue
        item_id = int(row["id"]) if row["id"] else None
        entries.append(price_items.ItemRow(id=item_id, name=name, price=price, category=category))
    if not errors:
        try:
            price_items.save_items(db.session, merchant, entries)
        except NeighbourlyError as error:
            errors["form"] = error.message
        else:
            return _saved(merchant, "prices", _("The price list is saved."))
    rows = kept + [_blank_row() for _index in range(BLANK_PRICE_ROWS)]
    return _settings(merchant, block="prices", status=422, price_rows=rows, errors=errors,
                     row_errors=any(key != "form" for key in errors))


@bp.route("/<merchant_slug>/settings/prices/<int:item_id>/photo", methods=["POST"])
@staff_required("owner")
def upload_item_photo(merchant: Merchant, item_id: int):
    """A photo of one item, checked and re-encoded like the merchant's photos; 4xx stores nothing."""
    upload = request.files.get("photo")
    limits = _photo_limits()
    try:
        if upload is None or not upload.filename:
            raise photos.PhotoRejected(_("Choose a photo to upload."))
        data = photos.read_limited(upload.stream, limits.max_bytes)
        price_items.set_photo(
            db.session, merchant, item_id, data, current_app.config["UPLOAD_FOLDER"], limits
        )
    except NeighbourlyError as error:
        return _settings(merchant, block="prices", status=error.status_code,
                         errors={f"photo-{item_id}": error.message})
    return _saved(merchant, "prices", _("The photo of the item is saved."))


@bp.route("/<merchant_slug>/settings/prices/<int:item_id>/photo/delete", methods=["POST"])
@staff_required("owner")
def delete_item_photo(merchant: Merchant, item_id: int):
    try:
        price_items.delete_photo(db.session, merchant, item_id, current_app.config["UPLOAD_FOLDER"])
    except NeighbourlyError as error:
        return _settings(merchant, block="prices", status=error.status_code,
                         errors={"form": error.message})
    return _saved(merchant, "prices", _("The photo of the item is deleted."))


@bp.route("/<merchant_slug>/settings/hours", methods=["POST"])
@staff_required("owner")
def save_hours(merchant: Merchant):
    """The weekly opening hours "open now" reads (times in the network's time zone)."""
    form = request.form
    days = [
        hours_service.DayForm(
            weekday=weekday, closed=form.get(f"closed-{weekday}") == "on",
            opens=form.get(f"opens-{weekday}", "")[:10], closes=form.get(f"closes-{weekday}", "")[:10],
        )
        for weekday in range(7)
    ]
    hours, errors = hours_service.parse_form(days)
    note = form.get("opening_hours", "").strip()
    if len(note) > 1000:
        errors["opening_hours"] = _("At most %(limit)s characters.", limit=1000)
    if errors:
        rows = [{"weekday": d.weekday, "closed": d.closed, "opens": d.opens, "closes": d.closes}
                for d in days]
        return _settings(merchant, block="hours", status=422, hours_rows=rows, errors=errors,
                         hours_note=note)
    with unit_of_work(db.session):
        hours_service.save_hours(db.session, merchant, hours)
        merchant.opening_hours = note
    return _saved(merchant, "hours", _("The opening hours are saved."))


@bp.route("/<merchant_slug>/settings/rates", methods=["POST"])
@staff_required("owner")
def save_rates(merchant: Merchant):
    rates = {"cashback": request.form.get("cashback", ""), "share": request.form.get("share", "")}
    errors: dict[str, str] = {}
    try:
        cashback_bp = merchants.parse_cashback_bp(rates["cashback"])
    except ValidationFailed as error:
        errors["cashback"] = error.message
    try:
        share = merchants.parse_points_share_pct(rates["share"])
    except ValidationFailed as error:
        errors["share"] = error.message
    if not errors:
        try:
            merchants.update_rates(db.session, merchant, cashback_bp, share)
        except ValidationFailed as error:
            errors["form"] = error.message
        else:
            return _saved(merchant, "rates", _("Cashback and the points share are saved."))
    return _settings(merchant, block="rates", status=422, rates=rates, errors=errors)


@bp.route("/<merchant_slug>/settings/lifecycle", methods=["POST"])
@staff_required("owner")
def save_lifecycle(merchant: Merchant):
    """Welcome and birthday bonuses and the expiry policy (for points earned from now on)."""
    form = {key: request.form.get(key, "")[:20] for key in
            ("welcome_bonus", "birthday_bonus", "birthday_days", "expiry_mode", "expiry_months")}
    try:
        values = points_service.parse_settings(form)
    except ValidationFailed as error:
        return _settings(merchant, block="lifecycle", status=422, lifecycle=form,
                         errors={str(error.details.get("field", "form")): error.message})
    points_service.save_settings(db.session, merchant, values)
    return _saved(merchant, "lifecycle", _("Bonuses and the expiry policy are saved."))


def _photo_limits() -> photos.Limits:
    return photos.Limits(
        max_bytes=current_app.config["MAX_PHOTO_BYTES"],
        max_pixels=current_app.config["MAX_PHOTO_PIXELS"],
    )


@bp.route("/<merchant_slug>/settings/photos", methods=["POST"])
@staff_required("owner")
def upload_photo(merchant: Merchant):
    """Check and re-encode an upload; anything but a plain photo answers 422 and stores nothing."""
    upload = request.files.get("photo")
    limits = _photo_limits()
    try:
        if upload is None or not upload.filename:
            raise photos.PhotoRejected(_("Choose a photo to upload."))
        data = photos.read_limited(upload.stream, limits.max_bytes)
        photos.add_photo(
            db.session, merchant, data, current_app.config["UPLOAD_FOLDER"], limits,
            alt_text=request.form.get("alt_text", ""),
        )
    except ValidationFailed as error:
        return _settings(merchant, block="photos", status=error.status_code,
                         errors={"photo": error.message})
    return _saved(merchant, "photos", _("The photo is added."))


@bp.route("/<merchant_slug>/settings/photos/<int:photo_id>/delete", methods=["POST"])
@staff_required("owner")
def delete_photo(merchant: Merchant, photo_id: int):
    try:
        photos.delete_photo(db.session, merchant, photo_id, current_app.config["UPLOAD_FOLDER"])
    except NotFound:
        abort(404)
    return _saved(merchant, "photos", _("The photo is deleted."))


@bp.route("/<merchant_slug>/settings/photos/<int:photo_id>/move", methods=["POST"])
@staff_required("owner")
def move_photo(merchant: Merchant, photo_id: int):
    offset = -1 if request.form.get("direction") == "up" else 1
    try:
        photos.move_photo(db.session, merchant, photo_id, offset)
    except NotFound:
        abort(404)
    return _saved(merchant, "photos", _("The order of the photos is saved."))


# --------------------------------------------------------------------------- staff


def _staff(merchant: Merchant, status: int = 200, **overrides):
    context = {
        "members": staff.list_staff(db.session, merchant),
        "invitations": staff.open_invitations(db.session, merchant),
        "email": "",
        "errors": {},
    }
    context.update(overrides)
    return render("business/staff.html", block="staff", status=status, merchant=merchant, **context)


@bp.route("/<merchant_slug>/staff", endpoint="staff")
@staff_required("owner")
def staff_view(merchant: Merchant):
    return _staff(merchant)


@bp.route("/<merchant_slug>/staff/invite", methods=["POST"])
@staff_required("owner")
def invite(merchant: Merchant):
    email = request.form.get("email", "")
    try:
        with unit_of_work(db.session):  # the invitation and its e-mail (an outbox row) commit together
            created = staff.invite_cashier(db.session, merchant, current_user, email)
            link = public_url("business.invitation", token=created.token)
            invitee = accounts.find_user_by_email(db.session, created.invitation.email)
            with in_recipient_language(invitee, merchant.network):
                send_email(
                    to=created.invitation.email,
                    subject=_("%(merchant)s invites you to work at its till", merchant=merchant.name),
                    text=_(
                        "Hello,\n\n%(inviter)s invites you to record purchases at %(merchant)s as a cashier on "
                        "Neighbourly.\n\nOpen this link within seven days and sign in (or create an account) "
                        "with this e-mail address:\n%(link)s\n\nIf you did not expect this, ignore this e-mail.",
                        inviter=current_user.name or current_user.email, merchant=merchant.name, link=link,
                    ),
                    sender_name=merchant.name,
                )
    except (ValidationFailed, Conflict) as error:
        return _staff(merchant, status=422, email=email, errors={"email": error.message})
    flash(_("An invitation is on its way to %(email)s.", email=created.invitation.email), "success")
    return see_other("business.staff", merchant_slug=merchant.slug)


@bp.route("/<merchant_slug>/staff/invitations/<int:invitation_id>/revoke", methods=["POST"])
@staff_required("owner")
def revoke_invitation(merchant: Merchant, invitation_id: int):
    try:
        staff.revoke_invitation(db.session, merchant, invitation_id)
    except NotFound:
        abort(404)
    flash(_("The invitation is revoked; its link no longer works."), "success")
    return see_other("business.staff", merchant_slug=merchant.slug)


@bp.route("/<merchant_slug>/staff/<int:role_id>/remove", methods=["POST"])
@staff_required("owner")
def remove_staff(merchant: Merchant, role_id: int):
    try:
        role = staff.remove_staff(db.session, merchant, role_id)
    except NotFound:
        abort(404)
    except Conflict as error:
        return _staff(merchant, status=409, errors={"staff": error.message})
    if role.user_id == current_user.id:
        flash(_("You no longer work at %(merchant)s.", merchant=merchant.name), "success")
        return see_other("business.home")
    flash(_("%(name)s no longer works here.", name=role.user.name or role.user.email), "success")
    return see_other("business.staff", merchant_slug=merchant.slug)


@bp.route("/invitations/<token>", methods=["GET", "POST"])
def invitation(token: str):
    """The invited person's page: sign in with the invited address, then accept."""
    found = staff.find_invitation(db.session, token)
    if found is None:
        abort(404)
    merchant = db.session.scalar(select(Merchant).where(Merchant.id == found.merchant_id))
    error, status = None, 200
    if request.method == "POST":
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.path), code=303)
        try:
            staff.accept_invitation(db.session, token, current_user)
        except (Forbidden, Conflict) as refused:
            error, status = refused.message, refused.status_code
        except NotFound:
            abort(404)
        else:
            flash(_("Welcome to the team at %(merchant)s.", merchant=merchant.name), "success")
            return see_other("cashier.till", merchant_slug=merchant.slug)
    wrong_account = (
        current_user.is_authenticated and current_user.email.lower() != found.email.lower()
    )
    return render(
        "business/invitation.html", status=status, invitation=found, merchant=merchant,
        token=token, error=error, wrong_account=wrong_account,
    )



# --------------------------------------------------------------------------- import and export


@bp.route("/<merchant_slug>/customers/export.csv")
@staff_required("owner")
def export_customers(merchant: Merchant):
    """Every card with its balance, streamed as the database reads it."""
    variant = csv_variant(request.args.get("format"), str(get_locale() or "en"))
    return variant.response(exports.customer_rows(db.session, merchant, variant), f"customers-{merchant.slug}.csv")


@bp.route("/<merchant_slug>/customers/ledger.csv")
@staff_required("owner")
def export_ledger(merchant: Merchant):
    """The points ledger of a period (local days, both included) for the accountant, streamed."""
    today = utcnow().astimezone(network_zone(merchant.network)).date()
    first, last = exports.parse_period(request.args.get("start"), request.args.get("end"), today)
    variant = csv_variant(request.args.get("format"), str(get_locale() or "en"))
    return variant.response(
        exports.ledger_rows(db.session, merchant, first, last, variant),
        f"ledger-{merchant.slug}-{first.isoformat()}-{last.isoformat()}.csv",
    )


def _import_cap() -> int:
    return current_app.config["IMPORT_MAX_BYTES"]


def _imports_page(merchant: Merchant, status: int = 200, error: str | None = None):
    return render(
        "business/imports.html", block="upload", status=status, merchant=merchant, error=error,
        recent=imports.recent(db.session, merchant), cap=_import_cap(),
    )


@bp.route("/<merchant_slug>/customers/import", methods=["GET", "POST"])
@staff_required("owner")
def import_customers(merchant: Merchant):
    """Upload a CSV of the previous program's customers; it is checked before anything else."""
    if request.method == "GET":
        return _imports_page(merchant)
    cap = _import_cap()
    too_large = _("The file is larger than %(size)s MB. Split it into smaller files.",
                  size=cap // (1024 * 1024))
    # A declared size over the cap was refused unread (``_import_body_limit``); this catches a
    # body that did not declare its size.
    upload = request.files.get("file")
    try:
        if upload is None or not upload.filename:
            raise ValidationFailed(_("Choose a CSV file to upload."))
        data = upload.stream.read(cap + 1)
        if len(data) > cap:
            return _imports_page(merchant, 413, too_large)
        job = imports.create_upload(db.session, merchant, current_user, upload.filename, data)
    except ValidationFailed as error:
        return _imports_page(merchant, error.status_code, error.message)
    return see_other("business.import_status", merchant_slug=merchant.slug, import_id=job.id)


FORM_OVERHEAD = 64 * 1024  # multipart boundaries, the CSRF token and the file name


def _import_body_limit():
    """Before anything reads the form (CSRF does, first): an import upload may be larger than
    other forms, up to its own cap, and a larger declared body is refused unread."""
    if request.endpoint != "business.import_customers" or request.method != "POST":
        return None
    limit = current_app.config["IMPORT_MAX_BYTES"] + FORM_OVERHEAD
    request.max_content_length = limit
    if request.content_length is not None and request.content_length > limit:
        message = _("The file is larger than %(size)s MB. Split it into smaller files.",
                    size=current_app.config["IMPORT_MAX_BYTES"] // (1024 * 1024))
        return render_template("errors/error.html", status=413, title=_("File too large"),
                               message=message), 413
    return None


@bp.record_once
def _install_import_body_limit(state) -> None:
    state.app.before_request_funcs.setdefault(None, []).insert(0, _import_body_limit)


def _import_or_404(merchant: Merchant, import_id: int):
    job = imports.get(db.session, merchant, import_id)
    if job is None:
        abort(404)
    return job


def _import_page(merchant: Merchant, job, status: int = 200, error: str | None = None,
                 mapping: list[str] | None = None):
    check = imports.stored_check(job) if job.status == "checked" else None
    return render(
        "business/import.html", block="progress", status=status, merchant=merchant, job=job,
        error=error, check=check, mapping=mapping or job.mapping, fields=imports.FIELD_LABELS,
        preview=imports.preview_rows(job) if job.status in ("uploaded", "checked") else [],
        kinds=imports.PROBLEM_KINDS,
    )


@bp.route("/<merchant_slug>/customers/import/<int:import_id>")
@staff_required("owner")
def import_status(merchant: Merchant, import_id: int):
    """The mapping and dry run before an import; its progress (polled by htmx) after."""
    job = _import_or_404(merchant, import_id)
    if is_fragment_request() and job.status in ("uploaded", "checked"):
        # The polled dry run has finished: the whole page shows its outcome and the next step.
        response = make_response("", 204)
        response.headers["HX-Refresh"] = "true"
        return response
    return _import_page(merchant, job)


@bp.route("/<merchant_slug>/customers/import/<int:import_id>/mapping", methods=["POST"])
@staff_required("owner")
def import_mapping(merchant: Merchant, import_id: int):
    job = _import_or_404(merchant, import_id)
    chosen = [request.form.get(f"column-{index}", "") for index in range(len(job.header))]
    try:
        imports.set_mapping(db.session, job, chosen)
    except ValidationFailed as error:
        return _import_page(merchant, job, 422, error.message, mapping=chosen)
    slug = merchant.slug
    imports.request_check(db.session, job)
    return see_other("business.import_status", merchant_slug=slug, import_id=import_id)


@bp.route("/<merchant_slug>/customers/import/<int:import_id>/start", methods=["POST"])
@staff_required("owner")
def import_start(merchant: Merchant, import_id: int):
    """Queue the import (or the rest of an interrupted one); the page then shows its progress."""
    job = _import_or_404(merchant, import_id)
    slug = merchant.slug
    try:
        imports.queue(db.session, job)
    except ValidationFailed as error:
        return _import_page(merchant, job, error.status_code, error.message)
    except Exception:  # the import stamped itself failed: its page says so and offers to resume
        current_app.logger.exception("customer import %s failed", import_id)
    return see_other("business.import_status", merchant_slug=slug, import_id=import_id)

"""The owner's News pages: list, write, edit and delete posts (404 where the plugin is off)."""

from __future__ import annotations

from flask import flash, request
from flask_babel import gettext as _
from flask_login import current_user

from plugins.news import services
from webapp.plugin_api import (
    ValidationFailed,
    db,
    merchant_plugin_blueprint,
    render,
    see_other,
    staff_required,
)

bp = merchant_plugin_blueprint(
    "news", __name__, url_prefix="/business/<merchant_slug>/news", template_folder="templates"
)


def _form() -> dict[str, str]:
    return {key: request.form.get(key, "") for key in ("title", "body", "link")}


@bp.route("/")
@staff_required("owner")
def index(merchant):
    listing = services.list_posts(db.session, merchant, request.args.get("page", 1, type=int) or 1)
    return render("news/index.html", merchant=merchant, listing=listing, form={}, errors={})


@bp.route("/", methods=["POST"])
@staff_required("owner")
def create(merchant):
    form = _form()
    try:
        services.create_post(db.session, merchant, current_user, **form)
    except ValidationFailed as error:
        return render(
            "news/index.html", block="post_form", status=422, merchant=merchant,
            listing=services.list_posts(db.session, merchant), form=form,
            errors=error.details.get("errors", {}),
        )
    flash(_("Your post is published."))
    return see_other("news.index", merchant_slug=merchant.slug)


@bp.route("/<int:post_id>/edit", methods=["GET", "POST"])
@staff_required("owner")
def edit(merchant, post_id: int):
    post = services.get_post(db.session, merchant, post_id)
    if request.method == "GET":
        form = {"title": post.title, "body": post.body, "link": post.link}
        return render("news/edit.html", merchant=merchant, post=post, form=form, errors={})
    form = _form()
    try:
        services.update_post(db.session, merchant, post_id, **form)
    except ValidationFailed as error:
        return render(
            "news/edit.html", block="post_form", status=422, merchant=merchant, post=post,
            form=form, errors=error.details.get("errors", {}),
        )
    flash(_("The post is updated."))
    return see_other("news.index", merchant_slug=merchant.slug)


@bp.route("/<int:post_id>/delete", methods=["POST"])
@staff_required("owner")
def delete(merchant, post_id: int):
    services.delete_post(db.session, merchant, post_id)
    flash(_("The post is deleted."))
    return see_other("news.index", merchant_slug=merchant.slug)

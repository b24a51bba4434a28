"""The unit of work: who ends a transaction, and what it keeps on the side (webapp/unit_of_work.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select

from tests.kit import enable_plugins, set_plugin_settings
from webapp import outbox, tasks
from webapp.errors import ValidationFailed
from webapp.extensions import db
from webapp.models import Merchant, OutboxMessage, User
from webapp.plugins import enabled_plugin_names, plugin_settings, scratch
from webapp.unit_of_work import current, unit_of_work


def _names() -> set[str]:
    db.session.expire_all()
    return set(db.session.scalars(select(User.name)))


def test_a_block_commits_when_it_ends(app, make_user):
    user = make_user(name="Before")
    with unit_of_work(db.session):
        user.name = "After"
    db.session.rollback()  # nothing is left to undo: the block committed
    assert "After" in _names()


def test_a_block_that_raises_rolls_back_and_the_session_stays_usable(app, make_user):
    user = make_user(name="Kept")
    with pytest.raises(ValidationFailed), unit_of_work(db.session):
        user.name = "Half-written"
        raise ValidationFailed("no")
    assert "Half-written" not in _names() and "Kept" in _names()
    assert not db.session.dirty


def test_inner_blocks_join_the_outer_one(app, make_user):
    user = make_user(name="Outer")
    with pytest.raises(RuntimeError), unit_of_work(db.session):
        with unit_of_work(db.session):  # a service called by a service
            user.name = "Inner"
        assert current(db.session).depth == 1  # the inner block did not commit
        raise RuntimeError("the outer block fails after the inner one ended")
    assert "Inner" not in _names() and "Outer" in _names()


def test_blocks_inside_a_job_commit_each_on_their_own(app, make_user):
    first = make_user(name="First")
    make_user(name="Second")

    @tasks.job
    def batches(session):
        with unit_of_work(session):
            session.get(User, first.id).name = "First done"
        raise RuntimeError("the second batch fails")

    with pytest.raises(RuntimeError):
        batches()
    names = _names()
    assert "First done" in names and "Second" in names  # the first batch stayed committed


def test_outbox_messages_are_handed_over_after_the_commit_and_forgotten_on_rollback(app, monkeypatch):
    handed: list[list[tuple[int, float]]] = []
    monkeypatch.setattr(outbox, "hand_over", handed.append)
    with pytest.raises(RuntimeError), unit_of_work(db.session):
        outbox.add(db.session, "email", {"to": "a@example.com"})
        assert outbox.uncommitted(db.session) == 1
        raise RuntimeError("rolled back")
    assert handed == [] and outbox.uncommitted(db.session) == 0
    with unit_of_work(db.session):
        outbox.add(db.session, "email", {"to": "b@example.com"})
        assert handed == []  # not before the commit
    assert len(handed) == 1 and len(handed[0]) == 1
    stored = db.session.get(OutboxMessage, handed[0][0][0])
    assert stored.payload["to"] == "b@example.com"


def test_keep_loaded_leaves_what_the_caller_names_and_expires_the_rest(app, make_merchant, make_user):
    shop = make_merchant(name="Kept Shop")
    other = make_user(name="Other")
    assert shop.name and other.name  # both loaded
    with unit_of_work(db.session) as unit:
        unit.keep_loaded(shop)
    assert "name" in shop.__dict__  # still loaded: reading it sends nothing
    assert "name" not in other.__dict__  # expired as a commit always does


def test_the_merchants_plugins_are_read_once_and_again_after_a_plugin_row_is_written(app, make_merchant):
    shop = make_merchant(name="Counted")
    db.session.commit()
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        if "merchant_plugins" in statement:
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert enabled_plugin_names(shop) == frozenset()
        plugin_settings(shop, "news")
        enabled_plugin_names(shop)
        assert len(seen) == 1  # one statement for the enabled names and every plugin's settings
        enable_plugins(shop, "news")  # writes the plugin row: what was read is forgotten
        assert "news" in enabled_plugin_names(shop)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def test_settings_saved_by_another_request_are_read_in_the_next_transaction(app, make_merchant):
    shop = make_merchant(name="Fresh")
    enable_plugins(shop, "news")
    assert plugin_settings(shop, "news")["posts_shown"] == 3
    shop_id = shop.id
    db.session.commit()  # the next transaction reads the settings again
    with app.app_context():  # another request (its own session) saves them
        set_plugin_settings(db.session.get(Merchant, shop_id), "news", posts_shown=7)
        db.session.remove()
    assert plugin_settings(shop, "news")["posts_shown"] == 7


def test_scratch_space_is_per_plugin_per_request(app):
    with app.test_request_context():
        scratch("news")["seen"] = 1
        assert scratch("news") == {"seen": 1}
        assert scratch("offers") == {}
    with app.test_request_context():
        assert scratch("news") == {}  # a new request starts empty
    with pytest.raises(LookupError):
        scratch("no_such_plugin")


def test_a_merchant_task_runs_once_per_merchant_and_one_failure_spares_the_others(app, make_merchant):
    shops = [make_merchant(name=f"Shop {n}") for n in range(3)]
    for shop in shops:
        enable_plugins(shop, "news")
    plain = make_merchant(name="Without the plugin")
    db.session.commit()
    failing = shops[1].id

    @tasks.merchant_task("news")
    def rename(session, merchant):
        merchant.description = "visited"
        if merchant.id == failing:
            raise RuntimeError("this shop's data is broken")
        return 1

    assert rename() == 2
    db.session.expire_all()
    described = {m.id: m.description for m in db.session.scalars(select(Merchant))}
    assert described[shops[0].id] == described[shops[2].id] == "visited"
    assert described[failing] != "visited"  # its block rolled back
    assert described[plain.id] != "visited"

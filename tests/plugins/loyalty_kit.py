"""Shared by the gamification and referrals tests: both plugins installed; join and buy from
``tests.kit``, at the amount these tests use."""

from __future__ import annotations

import pytest

from tests import kit
from tests.kit import join  # noqa: F401 - re-exported for the gamification and referrals tests


@pytest.fixture
def app_overrides():
    return {"PLUGINS": ["plugins.gamification", "plugins.referrals"]}


def buy(merchant, membership, amount: int = 100_000, key: str | None = None):
    return kit.buy(merchant, membership, amount, key=key)

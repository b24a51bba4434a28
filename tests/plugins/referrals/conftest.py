"""Fixtures for the referrals tests (shared with the other loyalty plugin)."""

from tests.plugins.loyalty_kit import app_overrides  # noqa: F401 - the fixture

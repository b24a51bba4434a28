"""Tests of the POS integration API under /api/v1/."""

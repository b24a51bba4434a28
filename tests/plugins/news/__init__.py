"""Tests of the news plugin."""

"""Tests of the built-in plugins, one folder each."""

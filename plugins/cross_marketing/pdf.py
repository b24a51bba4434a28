"""Settlement statements as PDF: plain data in, WeasyPrint with a deny-by-default URL fetcher."""

from __future__ import annotations

from flask import render_template


def locked_fetcher():
    """Only ``data:`` URLs load: no local files, no loopback requests, no network."""
    from weasyprint.urls import URLFetcher

    return URLFetcher(allowed_protocols={"data"}, allow_redirects=False, timeout=1)


def render_pdf(template: str, **context) -> bytes:
    """Render an autoescaped HTML template to PDF bytes (outside any purchase transaction)."""
    from weasyprint import HTML

    html = render_template(template, **context)
    return HTML(string=html, base_url="data:,", url_fetcher=locked_fetcher()).write_pdf()

"""The core's one PDF renderer: only data: URLs and the files the caller allows by exact URL load,
nothing from the disk otherwise, and a document that takes too long is refused."""

from __future__ import annotations

import io

import pytest
import segno
from pypdf import PdfReader

from webapp import pdf


def png() -> bytes:
    buffer = io.BytesIO()
    segno.make("pdf-test").save(buffer, kind="png", scale=2)
    return buffer.getvalue()


def test_data_urls_load_and_local_files_do_not(tmp_path):
    picture = tmp_path / "picture.png"
    picture.write_bytes(png())
    html = (
        f'<html><body><p>Сәлем</p><img src="{pdf.data_url(png(), "image/png")}">'
        f'<img src="file://{picture}"><img src="{picture}"></body></html>'
    )
    reader = PdfReader(io.BytesIO(pdf.render_pdf(html)))
    # Only the data: image is in the document; the same picture by file path is not.
    assert len(reader.pages[0].images) == 1


def test_a_file_loads_only_under_the_exact_url_the_caller_allows(tmp_path):
    stylesheet = tmp_path / "page.css"
    stylesheet.write_text("@page { size: A5; margin: 0 }")
    html = '<html><head><link rel="stylesheet" href="{url}"></head><body><p>x</p></body></html>'
    allowed = {"our-static:page.css": str(stylesheet)}

    def page_width(document: bytes) -> int:
        return round(float(PdfReader(io.BytesIO(document)).pages[0].mediabox.width))

    assert (
        page_width(pdf.render_pdf(html.format(url="our-static:page.css"), allowed=allowed)) == 420
    )  # A5
    # The same file by its path, or another URL, is not fetched: WeasyPrint's default A4 stays.
    assert (
        page_width(pdf.render_pdf(html.format(url=f"file://{stylesheet}"), allowed=allowed)) == 595
    )
    assert page_width(pdf.render_pdf(html.format(url="our-static:page.css"))) == 595


def test_a_document_over_its_time_limit_is_refused():
    with pytest.raises(pdf.PdfRefused) as refused:
        pdf.render_pdf("<html><body><p>Fine</p></body></html>", timeout=0.05)
    assert refused.value.timed_out and refused.value.status_code == 422
    assert "too long" in refused.value.message


def test_the_surface_offers_the_same_renderer():
    from webapp import plugin_api

    assert plugin_api.render_pdf is pdf.render_pdf and plugin_api.PdfRefused is pdf.PdfRefused

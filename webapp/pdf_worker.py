"""Child process that turns one HTML document into a PDF with a deny-by-default URL fetcher.

Run as a script (``python -I pdf_worker.py``) by :mod:`webapp.pdf`: JSON on stdin (``html`` and
``allowed``, a map of exact URL -> local file), PDF bytes on stdout. It imports nothing from the
project, so a hostile document can reach only what this file lets it reach.
"""

from __future__ import annotations

import json
import logging
import resource
import sys

from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

MAX_RESOURCE_BYTES = 8 * 1024 * 1024


class DenyByDefaultFetcher(URLFetcher):
    """Only ``data:`` URLs and the exact static files the parent listed; never file: or network."""

    def __init__(self, allowed: dict[str, str]) -> None:
        # No redirect handler, and data: as the only protocol the base class may open.
        super().__init__(allowed_protocols={"data"}, allow_redirects=False, timeout=1)
        self._allowed = dict(allowed)

    def fetch(self, url, headers=None):
        if url in self._allowed:
            with open(self._allowed[url], "rb") as handle:
                body = handle.read(MAX_RESOURCE_BYTES)
            mime = "text/css" if url.endswith(".css") else "application/octet-stream"
            return URLFetcherResponse(url, body, {"Content-Type": mime})
        if url[:5].lower() == "data:":
            if len(url) > MAX_RESOURCE_BYTES * 2:
                raise ValueError("data: URL too large")
            return super().fetch(url, headers)
        raise ValueError(f"blocked by the PDF URL fetcher: {url[:80]}")


def main() -> int:
    cpu_seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    # A backstop behind the parent's wall-clock timeout: a runaway layout cannot keep a core.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    request = json.load(sys.stdin)
    document = HTML(string=request["html"], base_url=None, url_fetcher=DenyByDefaultFetcher(request["allowed"]))
    pdf = document.write_pdf()
    sys.stdout.buffer.write(pdf)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

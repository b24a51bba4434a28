"""Bench: 1,000 letters rendered as one PDF by the letters plugin against bare WeasyPrint.

Both sides render the very same HTML (the plugin's print template filled for 1,000 customers) in
the same run: the plugin through ``render_pdf`` (a fresh, time-limited child process with the
deny-by-default URL fetcher), the floor with ``weasyprint.HTML(string=...).write_pdf()`` in
process with WeasyPrint's defaults. The ratio is the plugin's time per letter over the floor's.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

LETTERS = int(os.environ.get("BENCH_LETTERS", "1000"))
GOAL = 1.2


def _letters_html(count: int) -> str:
    """The plugin's real print template for ``count`` customers, without touching a database."""
    from flask import Flask

    from plugins.letters import compose, delivery, pdf

    folder = Path(delivery.__file__).parent / "templates"
    app = Flask("bench_letters", template_folder=str(folder))
    app.config.update(PUBLIC_URL="http://localhost", LANGUAGES={"en": "English", "ru": "Русский"})
    from flask_babel import Babel

    Babel(app)
    subject, body = compose.default_template("thanks", "ru")
    with app.app_context():
        letters = []
        for number in range(count):
            values = {
                "first_name": f"Әсел {number}", "merchant": "Пекарня на углу", "amount": "4 500,00 ₸",
                "date": "12 марта 2027 г.", "points_earned": "225", "points_balance": "1 240",
                "wallet_url": f"http://localhost/wallet/cards/{number + 1}",
            }
            rendered = compose.render_letter(subject, body, values)
            letters.append({
                "subject": rendered.subject, "body": rendered.html, "locale": "ru",
                "address": [f"Әсел Нұрланқызы {number}", "ул. Абая, 15, кв. 7", "050000 Алматы", "Қазақстан"],
                "qr": pdf.data_url(delivery.qr_png(values["wallet_url"]), "image/png"),
                "wallet_url": values["wallet_url"],
            })
        from flask import render_template

        return render_template(
            "letters/print.html", letters=letters, merchant_name="Пекарня на углу",
            merchant_address="Алматы, ул. Абая, 1", merchant_phone="+7 727 000 00 00", logo=None,
            stylesheet=next(iter(pdf.STATIC_FILES)),
        )


def _bare(html: str) -> float:
    """WeasyPrint in process; our stylesheet inlined so both sides lay out the same page."""
    from weasyprint import HTML

    from plugins.letters import pdf

    css = Path(next(iter(pdf.STATIC_FILES.values()))).read_text()
    inlined = html.replace(
        f'<link rel="stylesheet" href="{next(iter(pdf.STATIC_FILES))}">', f"<style>{css}</style>"
    )
    started = time.perf_counter()
    data = HTML(string=inlined).write_pdf()
    elapsed = time.perf_counter() - started
    assert data.startswith(b"%PDF")
    return elapsed


def _ours(html: str, count: int) -> float:
    from plugins.letters import pdf

    started = time.perf_counter()
    data = pdf.render_pdf(html, timeout=pdf.time_limit(count))
    elapsed = time.perf_counter() - started
    assert data.startswith(b"%PDF")
    return elapsed


def run(results: dict) -> None:
    """Store ``letters_pdf_vs_bare_weasyprint`` (ratio, goal at most 1.2) and the raw timings."""
    html = _letters_html(LETTERS)
    _bare(_letters_html(2))  # pay WeasyPrint's first-import cost outside the measurement
    bare = _bare(html)
    ours = _ours(html, LETTERS)
    ratio = ours / bare
    results["letters_pdf_vs_bare_weasyprint"] = round(ratio, 3)
    results["letters_pdf_detail"] = {
        "letters": LETTERS,
        "bare_seconds_per_letter": round(bare / LETTERS, 4),
        "plugin_seconds_per_letter": round(ours / LETTERS, 4),
        "goal": GOAL,
    }
    print(
        f"letters: {LETTERS} letters as one PDF: plugin {ours / LETTERS * 1000:.1f} ms/letter, "
        f"bare WeasyPrint {bare / LETTERS * 1000:.1f} ms/letter, ratio {ratio:.2f}x (goal <= {GOAL}x)",
        flush=True,
    )


if __name__ == "__main__":
    os.environ.setdefault("NEIGHBOURLY_TASKS_DB", str(Path(tempfile.gettempdir()) / "bench-letters-tasks.db"))
    collected: dict = {}
    run(collected)
    print(collected)

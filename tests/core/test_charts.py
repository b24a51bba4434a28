"""Server-rendered bar charts: a scale, values a person and a screen reader can read, labels that
do not run into each other."""

from __future__ import annotations

import re

from markupsafe import Markup


def render(app, values, labels, title="Purchases per week", format=None):
    with app.test_request_context("/"):
        macro = app.jinja_env.get_template("macros/charts.html").module.bars
        return str(macro(values, labels, title, format=format))


def test_weekly_bars_have_a_scale_values_and_a_table(app):
    values = [3, 0, 40, 400, 12, 7, 9, 1, 0, 5, 6, 8]
    labels = [f"w{week}" for week in range(12)]
    html = render(app, values, labels)
    ticks = re.findall(r'class="tick"[^>]*>([^<]+)<', html)
    assert ticks == ["400", "200", "0"]  # the highest value, half of it and zero
    assert 'aria-label="Purchases per week: highest 400 (w3)"' in html
    assert "<title>w2: 40</title>" in html and "<title>w3: 400</title>" in html
    rows = re.findall(r"<tr><th scope=\"row\">(\w+)</th><td>(\d+)</td></tr>", html)
    assert rows == [(label, str(value)) for label, value in zip(labels, values, strict=True)]
    # Twelve labels under 28-unit bars: every third is shown, the others are hidden as crowded.
    visible = re.findall(r'class="bar-label" [^>]*>(\w+)<', html)
    assert visible == ["w0", "w3", "w6", "w9"]


def test_a_tick_sits_at_its_own_value(app):
    html = render(app, [3, 1], ["a", "b"])
    lines = dict(re.findall(r'y="([\d.]+)" class="tick" text-anchor="end">(\d+)<', html))
    positions = {int(text): float(y) for y, text in lines.items()}
    top, middle, zero = positions[3], positions[1], positions[0]
    assert abs((zero - middle) / (zero - top) - 1 / 3) < 0.01  # 1 is a third of the way up to 3


def test_long_labels_lie_beside_their_bars_with_values(app):
    names = ["Новичок", "Постоянный", "Серебро", "Золото", "VIP"]
    html = render(app, [1, 2, 2, 0, 0], names, title="Customers by level")
    assert 'class="bar-chart lying"' in html
    assert re.findall(r'class="bar-label" text-anchor="end">([^<]+)<', html) == names
    assert re.findall(r'class="bar-value">(\d+)<', html) == ["1", "2", "2", "0", "0"]
    # One row per level: labels stack vertically, so they cannot overlap.
    ys = [float(y) for y in re.findall(r'<text x="[\d.]+" y="([\d.]+)" class="bar-label"', html)]
    assert all(b - a >= 20 for a, b in zip(ys, ys[1:], strict=False))


def test_money_values_use_the_given_format_and_empty_charts_say_so(app):
    html = render(app, [150_000, 0], ["a", "b"], format=lambda value: Markup(f"₸{value / 100:,.0f}"))
    assert "<title>a: ₸1,500</title>" in html and ">₸750<" in html
    assert "Nothing to show yet." in render(app, [0, 0], ["a", "b"])

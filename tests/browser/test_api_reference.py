"""The API reference page: Swagger UI, served from node_modules, renders the app's own OpenAPI
document under the strict Content-Security-Policy (a violation is a console error and fails)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_the_reference_page_renders_every_operation_under_the_csp(live_app, new_page):
    page = new_page(viewport={"width": 1280, "height": 900}, locale="ru-RU")
    response = page.goto(f"{live_app.live_url}/developers/api")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.get_by_role("heading", name="Справочник API", exact=True)).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/purchases/{purchase_id}/refund")).to_be_visible()
    expect(page.get_by_text("Record a sale.", exact=True)).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/certificates/lookup")).to_be_visible()
    page.get_by_text("Record a sale.", exact=True).click()
    expect(page.get_by_text("Idempotency-Key").first).to_be_visible()
    expect(page.get_by_text("application/problem+json").first).to_be_visible()

"""The OpenAPI document is generated from the views: every API route is in it, every answer is
described (problem documents as application/problem+json), POSTs need the Idempotency-Key."""

from __future__ import annotations

import re

import pytest
from flask import Blueprint

from webapp import api


@pytest.fixture
def app_overrides():
    return {"PLUGINS": ["plugins.cross_marketing"]}


def test_the_document_is_openapi_3_1_and_needs_no_key(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    document = response.get_json()
    assert document["openapi"] == "3.1.0"
    assert document["components"]["securitySchemes"]["apiKey"] == {
        "type": "http", "scheme": "bearer", "description": document["components"]["securitySchemes"]["apiKey"]["description"],
    }
    assert document["security"] == [{"apiKey": []}]


def test_every_api_route_is_described_with_its_errors(app, client):
    document = client.get("/api/v1/openapi.json").get_json()
    routes = {
        (re.sub(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/")
        and rule.rule != "/api/v1/openapi.json"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    described = {(path, method) for path, methods in document["paths"].items() for method in methods}
    assert routes == described
    assert ("/api/v1/certificates/redeem", "post") in described  # from the plugin's hook
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            answers = operation["responses"]
            assert {"401", "429", "503"} <= set(answers), (path, method)
            for status, answer in answers.items():
                media = set(answer.get("content", {}))
                if int(status) >= 400:
                    assert media == {"application/problem+json"}, (path, method, status)
                else:
                    assert media == {"application/json"}, (path, method, status)
                    assert "RateLimit-Remaining" in answer["headers"]
            headers = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "header"}
            if method == "post" and path != "/api/v1/quote":
                assert headers["Idempotency-Key"]["required"] is True, path
                assert "409" in answers and "Idempotent-Replayed" in answers[min(answers)]["headers"]
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail"} <= set(problem["required"])


def test_plugin_api_blueprints_must_come_from_the_factory(app):
    class Registry:
        class pm:  # noqa: N801 - stands in for pluggy's manager
            class hook:  # noqa: N801
                @staticmethod
                def neighbourly_register_api(app):
                    return [[Blueprint("loose", __name__, url_prefix="/api/v1")]]

    with pytest.raises(RuntimeError, match="plugin_api_blueprint"):
        api.register_plugin_apis(app, Registry)


def test_the_owner_finds_the_reference_page_in_english_and_russian(client, make_merchant):
    shop = make_merchant(name="Bakery")
    client.login(shop.owner)
    page = client.get(f"/business/{shop.slug}/integrations").get_data(as_text=True)
    assert 'href="/developers/api"' in page and "Read the API reference" in page
    reference = client.get("/developers/api", headers={"Accept-Language": "en"})
    assert reference.status_code == 200
    text = reference.get_data(as_text=True)
    assert "<title>API reference" in text and 'data-spec-url="/api/v1/openapi.json"' in text
    assert "/vendor/swagger-ui-bundle.js" in text and "<script>" not in text  # no inline script
    assert client.get("/vendor/swagger-ui-bundle.js").status_code == 200
    client.post_form("/account/locale", {"locale": "ru"})
    russian = client.get("/developers/api").get_data(as_text=True)
    assert "<title>Справочник API" in russian

"""Core blueprints: thin views that authenticate, authorise, parse, call a service and render."""

from __future__ import annotations

from flask import Flask

from webapp.web import set_security_headers, soften_htmx_form_errors


def register_core_blueprints(app: Flask) -> None:
    from webapp.blueprints import (
        account,
        api,
        assets,
        auth,
        business,
        cashier,
        developers,
        integrations,
        marketplace,
        operator,
        public,
        wallet,
    )

    for module in (public, auth, wallet, account, business, cashier, integrations, marketplace, operator, assets, api,
                   developers):
        app.register_blueprint(module.bp)
    app.after_request(set_security_headers)
    app.after_request(soften_htmx_form_errors)

"""docs/pos-integration.md cannot rot: its curl examples run, as written, with bash and curl
against gunicorn on loopback, in the guide's order, and answer what the guide says."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.api.pos_site import PRICE, database, guide_commands, seed, served
from tests.conftest import IN_CI

pytestmark = pytest.mark.slow


def run(block: str, env: dict[str, str]) -> dict:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block], env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, (block, result.stdout[-500:], result.stderr[-500:])
    return json.loads(result.stdout)


def test_the_guides_curl_examples_run_against_a_live_server(tmp_path):
    if shutil.which("curl") is None:
        if IN_CI:
            pytest.fail("curl is required under CI")
        pytest.skip("curl not installed")
    blocks = guide_commands()
    assert len(blocks) >= 9, "the guide lost its examples"
    with database("sqlite", tmp_path) as url:
        site = seed(url, customers=2, certificates=1)
        with served(site, tmp_path, workers=1):
            env = {
                "PATH": os.environ["PATH"], "NEIGHBOURLY": site.base_url, "KEY": site.secret,
                "CARD_CODE": site.card_codes[0], "CERTIFICATE_CODE": site.certificate_codes[0],
            }
            seen = []
            for block in blocks:
                answer = run(block, env)
                seen.append(block)
                if "/customers/lookup" in block:
                    env["MEMBERSHIP_ID"] = str(answer["id"])
                elif "/quote" in block:
                    assert answer["amount"] == PRICE and answer["earn_rate_bp"] == 500
                elif "/api/v1/purchases\"" in block and "-X POST" in block:
                    assert answer["amount"] == PRICE and answer["points_earned"] == PRICE * 5 // 100
                    env["PURCHASE_ID"] = str(answer["id"])
                    assert run(block, env) == answer  # sent again with the same key: one sale
                elif "/refund" in block:
                    assert answer["id"] == int(env["PURCHASE_ID"]) and answer["refunded_at"]
                    refunded = answer["id"]
                elif "/certificates/lookup" in block:
                    assert answer["usable"] is True
                    env["MEMBERSHIP_ID"] = str(answer["membership_id"])
                elif "/certificates/redeem" in block:
                    assert answer["value_used"] == 50_000
                    assert answer["purchase"]["amount_paid"] == PRICE - 50_000
                elif "cursor=" in block:
                    assert [row["id"] for row in answer["data"]] == [refunded]
                    assert answer["next_cursor"] is None
                elif "?limit=1" in block:
                    # newest first: the certificate's sale, then the refunded sale on the next page
                    assert [row["certificate_value_used"] for row in answer["data"]] == [50_000]
                    env["NEXT_CURSOR"] = answer["next_cursor"]
                elif "/merchant" in block:
                    assert answer["name"] == "Café Lipa" and answer["currency"] == "KZT"
            assert len(seen) == len(blocks)

"""The daily token budget at its edge: the call that reaches it completes, the next one is
refused until the next UTC midnight, and the refusal says how long that is. A call whose worker
died before settling holds the budget only until its reservation's lease has passed; a worker
that stops counts every call it answered."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from {{ cookiecutter.package_name }}.ai import usage

from .upstream import AI_TEST_SETTINGS, Upstream, json_body, provider_settings

HELLO = {"messages": [{"role": "user", "content": "Say hello"}]}
HELLO_TOKENS = 15  # the stub's default reply: 10 prompt + 5 completion tokens


def post(client: FlaskClient, path: str, headers: dict[str, str]) -> Any:
    return client.post(f"/api/v1/ai/{path}", json=HELLO, headers=headers)


# A service process that answers calls and exits straight after its last response.
ANSWER_AND_EXIT = """
import json, sys
from {{ cookiecutter.package_name }} import create_app
config, headers, calls, body = json.loads(sys.argv[1])
client = create_app(config).test_client()
for _ in range(calls):
    with client.post("/api/v1/ai/complete", json=body, headers=headers) as response:
        assert response.status_code == 200, response.json
"""


def seconds_to_utc_midnight() -> float:
    now = datetime.now(UTC)
    return (datetime.combine(now.date() + timedelta(days=1), time.min, UTC) - now).total_seconds()


def test_the_call_that_reaches_the_budget_exactly_completes_and_the_next_is_refused(
    make_ai_app: Callable[..., OpenAPI], upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    client = make_ai_app(ai_token_budget_daily=HELLO_TOKENS).test_client()

    reaches = post(client, "complete", ai_headers)
    usage = json_body(client.get("/api/v1/ai/usage", headers=ai_headers))["data"]
    refused = post(client, "complete", ai_headers)

    assert reaches.status_code == 200, reaches.json
    assert (usage["today_tokens"], usage["remaining"]) == (HELLO_TOKENS, 0)
    assert refused.status_code == 429
    assert json_body(refused)["code"] == "budget_exceeded"
    assert len(upstream.requests) == 1


def test_a_call_is_admitted_while_one_token_of_the_budget_is_left(
    make_ai_app: Callable[..., OpenAPI], upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    client = make_ai_app(ai_token_budget_daily=HELLO_TOKENS + 1).test_client()

    statuses = [post(client, "complete", ai_headers).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]  # 15 of 16, then 30 of 16 (it crosses), then refused
    assert len(upstream.requests) == 2


@pytest.mark.parametrize("path", ["complete", "stream"])
def test_budget_exceeded_says_the_seconds_to_the_next_utc_midnight(
    path: str,
    make_ai_app: Callable[..., OpenAPI],
    upstream: Upstream,
    ai_headers: dict[str, str],
) -> None:
    client = make_ai_app(ai_token_budget_daily=HELLO_TOKENS).test_client()
    post(client, path, ai_headers).get_data()  # uses up the budget

    before = seconds_to_utc_midnight()
    refused = post(client, path, ai_headers)
    after = seconds_to_utc_midnight()

    assert refused.status_code == 429
    assert refused.mimetype == "application/json"
    body = json_body(refused)
    assert body["code"] == "budget_exceeded"
    # The budget's own wait (when it resets), not a rate limiter's window of a minute. Both
    # bounds allow for a clock that passes midnight during the request.
    retry_after = int(refused.headers["Retry-After"])
    assert min(before, after) - 5 <= retry_after <= max(before, after) + 5
    assert body["details"]["resets_in_seconds"] == retry_after


def test_a_reservation_left_by_a_dead_worker_stops_counting_once_its_lease_has_passed(
    make_ai_app: Callable[..., OpenAPI],
    upstream: Upstream,
    ai_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    period = usage.lease_period()
    monkeypatch.setattr(usage, "lease_period", lambda: period)  # the clock, by lease periods
    client = make_ai_app(ai_token_budget_daily=100).test_client()
    with monkeypatch.context() as dying:
        # The worker is killed between the upstream's answer and the settlement: the call's
        # reservation (prompt + max_tokens, the whole budget) is never released.
        dying.setattr(usage, "settle", lambda reservation, record: reservation.used)
        big = {**HELLO, "max_tokens": 100}
        killed = client.post("/api/v1/ai/complete", json=big, headers=ai_headers)
    held = post(client, "complete", ai_headers)
    monkeypatch.setattr(usage, "lease_period", lambda: period + 1)
    still_held = post(client, "complete", ai_headers)
    monkeypatch.setattr(usage, "lease_period", lambda: period + 2)
    freed = post(client, "complete", ai_headers)

    assert killed.status_code == 200, killed.json
    # Counted in its own lease period and the next (no call in flight takes that long) ...
    assert [held.status_code, still_held.status_code] == [429, 429]
    assert json_body(held)["code"] == "budget_exceeded"
    # ... and no longer after them.
    assert freed.status_code == 200, freed.json
    assert len(upstream.requests) == 2
    usage_now = json_body(client.get("/api/v1/ai/usage", headers=ai_headers))["data"]
    assert usage_now["today_tokens"] == HELLO_TOKENS  # the dead call was never counted


def test_a_process_that_exits_right_after_its_responses_counts_them_all(
    make_ai_app: Callable[..., OpenAPI],
    upstream: Upstream,
    ai_headers: dict[str, str],
    test_settings: dict[str, Any],
    database_url: str,
) -> None:
    # Settlements are written after their responses, by a thread of the process: those still
    # waiting when it exits are written before it goes.
    config = {
        **test_settings,
        "database_url": database_url,
        **AI_TEST_SETTINGS,
        **provider_settings(upstream.root),
    }
    calls = 20
    subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", ANSWER_AND_EXIT, json.dumps([config, ai_headers, calls, HELLO])],
        check=True,
        timeout=60,
    )

    client = make_ai_app().test_client()
    counted = json_body(client.get("/api/v1/ai/usage", headers=ai_headers))["data"]
    assert (counted["total_requests"], counted["today_tokens"]) == (calls, calls * HELLO_TOKENS)
    assert len(upstream.requests) == calls

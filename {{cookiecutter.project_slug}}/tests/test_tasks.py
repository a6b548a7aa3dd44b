"""Background jobs without a broker: they run eagerly, inside the request that queues them.

test_worker.py runs the same jobs on a real worker (with TEST_REDIS_URL).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from sqlalchemy.exc import OperationalError

from {{ cookiecutter.package_name }}.core.errors import NotFound, ServiceUnavailable
from {{ cookiecutter.package_name }}.jobs import reports
from {{ cookiecutter.package_name }}.jobs.celery_app import backoff
from {{ cookiecutter.package_name }}.jobs.reports import ITEMS_REPORT
from {{ cookiecutter.package_name }}.jobs.settings import JobsSettings
from {{ cookiecutter.package_name }}.tasks import celery_app

REPORT_URL = "/api/v1/tasks/items-report"
# No broker at all (whatever .env says): jobs run eagerly, inside the request.
EAGER: dict[str, Any] = dict.fromkeys(("redis_url", "celery_broker_url", "celery_result_backend"))


@pytest.fixture
def app(make_app: Callable[..., OpenAPI]) -> OpenAPI:
    return make_app(**EAGER)


def queue_report(client: FlaskClient, headers: dict[str, str]) -> str:
    response = client.post(REPORT_URL, headers=headers)
    assert response.status_code == 202, response.json
    data = response.json["data"]  # type: ignore[index]
    assert data["status_url"] == f"/api/v1/tasks/{data['task_id']}"
    return str(data["status_url"])


def task_data(client: FlaskClient, url: str, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.json
    data: dict[str, Any] = response.json["data"]  # type: ignore[index]
    return data


def add_items(client: FlaskClient, headers: dict[str, str], *items: dict[str, Any]) -> list[int]:
    ids = []
    for item in items:
        response = client.post("/api/v1/items", json=item, headers=headers)
        assert response.status_code == 201, response.json
        ids.append(response.json["data"]["id"])  # type: ignore[index]
    return ids


def job_counts(client: FlaskClient) -> dict[str, float]:
    """background_jobs_total of the items report, by event, from /metrics."""
    text = client.get("/metrics").get_data(as_text=True)
    pattern = r'background_jobs_total\{event="(\w+)",task="items_report"\} ([0-9.]+)'
    return {event: float(value) for event, value in re.findall(pattern, text)}


def test_items_report_runs_and_reports_on_the_items(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    ids = add_items(
        client,
        headers,
        {"title": "a", "status": "draft", "price": 2.5},
        {"title": "b", "status": "published", "price": 10},
        {"title": "c", "status": "published"},
        {"title": "d", "status": "archived", "price": 4},
        {"title": "gone", "status": "published", "price": 1000},
    )
    assert client.delete(f"/api/v1/items/{ids[-1]}", headers=headers).status_code == 200

    data = task_data(client, queue_report(client, headers), headers)

    assert data["status"] == "SUCCESS"
    assert data["error"] is None
    assert data["retries"] == 0
    report = data["result"]
    assert {key: report[key] for key in ("total", "draft", "published", "archived")} == {
        "total": 4,
        "draft": 1,
        "published": 2,
        "archived": 1,
    }
    assert report["priced"] == 3
    assert report["total_value"] == 16.5
    assert report["average_price"] == 5.5
    assert (report["min_price"], report["max_price"]) == (2.5, 10)
    assert report["first_created_at"] is not None
    assert report["scope"] == "{{ "own" if cookiecutter.use_auth else "all" }}"


def test_report_of_no_items(client: FlaskClient, headers: dict[str, str]) -> None:
    report = task_data(client, queue_report(client, headers), headers)["result"]
    assert report["total"] == report["priced"] == 0
    assert report["average_price"] is None
    assert report["first_created_at"] is None


def test_unknown_task_is_404(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.get("/api/v1/tasks/4f0c3bfa-0f6a-4b8e-9d5e-2c7a1d1e9b10", headers=headers)
    assert response.status_code == 404
    assert response.json["code"] == "not_found"  # type: ignore[index]


def test_malformed_task_id_is_422(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.get("/api/v1/tasks/not%20an%20id", headers=headers)
    assert response.status_code == 422
    assert response.json["code"] == "validation_error"  # type: ignore[index]


def test_transient_failures_are_retried_until_success(
    client: FlaskClient, headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    compute = reports.build_items_report

    def flaky(*args: Any) -> Any:
        calls.append(args)
        if len(calls) <= 2:
            raise OperationalError("SELECT 1", {}, ConnectionResetError("connection reset"))
        return compute(*args)

    monkeypatch.setattr(reports, "build_items_report", flaky)
    before = job_counts(client)

    data = task_data(client, queue_report(client, headers), headers)

    assert data["status"] == "SUCCESS"
    assert data["retries"] == 2
    assert len(calls) == 3
    after = job_counts(client)
    assert after["retried"] - before.get("retried", 0) == 2
    assert after["succeeded"] - before.get("succeeded", 0) == 1
    assert after["started"] - before.get("started", 0) == 3


def test_retries_are_bounded(
    make_app: Callable[..., OpenAPI], headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_app(**EAGER, celery_max_retries=1).test_client()
    calls = []

    def unavailable(*args: Any) -> Any:
        calls.append(args)
        raise ServiceUnavailable("The database is restarting.")

    monkeypatch.setattr(reports, "build_items_report", unavailable)
    data = task_data(client, queue_report(client, headers), headers)

    assert data["status"] == "FAILURE"
    assert data["retries"] == 1
    assert len(calls) == 2
    assert data["error"] == {
        "code": "service_unavailable",
        "message": "The database is restarting.",
    }


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (NotFound("User 7 not found."), {"code": "not_found", "message": "User 7 not found."}),
        (RuntimeError("secret"), {"code": "internal_error", "message": "The job failed."}),
    ],
)
def test_other_failures_fail_at_once_without_leaking_internals(
    client: FlaskClient,
    headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    expected: dict[str, str],
) -> None:
    calls = []

    def broken(*args: Any) -> Any:
        calls.append(args)
        raise error

    monkeypatch.setattr(reports, "build_items_report", broken)
    before = job_counts(client)
    url = queue_report(client, headers)
    response = client.get(url, headers=headers)

    data = response.json["data"]  # type: ignore[index]
    assert (data["status"], data["retries"], data["result"]) == ("FAILURE", 0, None)
    assert data["error"] == expected
    assert len(calls) == 1
    assert "secret" not in response.get_data(as_text=True)
    assert job_counts(client)["failed"] - before.get("failed", 0) == 1


def test_queued_jobs_are_counted(client: FlaskClient, headers: dict[str, str]) -> None:
    before = job_counts(client)
    queue_report(client, headers)
    queue_report(client, headers)
    after = job_counts(client)
    assert after["queued"] - before.get("queued", 0) == 2
    assert after["succeeded"] - before.get("succeeded", 0) == 2


def test_eager_mode_is_a_production_warning_and_shown_in_health(
    make_app: Callable[..., OpenAPI], capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(**EAGER, log_level="WARNING")
    # Outside production it is the expected way to develop: no warning on every command.
    assert "eager mode" not in capsys.readouterr().out
    worker = app.test_client().get("/health").json["checks"]["worker"]  # type: ignore[index]
    assert worker["status"] == "disabled"


def test_a_broker_needs_a_redis_result_backend(make_app: Callable[..., OpenAPI]) -> None:
    with pytest.raises(SystemExit, match="CELERY_RESULT_BACKEND"):
        make_app(**{**EAGER, "celery_broker_url": "amqp://guest@127.0.0.1//"})


def test_an_unreachable_queue_is_503(
    make_app: Callable[..., OpenAPI], headers: dict[str, str]
) -> None:
    nowhere = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    client = make_app(
        **{**EAGER, "celery_broker_url": nowhere, "celery_result_backend": nowhere}
    ).test_client()
    for response in (
        client.post(REPORT_URL, headers=headers),
        client.get("/api/v1/tasks/4f0c3bfa-0f6a-4b8e-9d5e-2c7a1d1e9b10", headers=headers),
    ):
        assert response.status_code == 503
        assert response.json["code"] == "service_unavailable"  # type: ignore[index]


def test_backoff_grows_exponentially_honours_retry_after_and_is_capped() -> None:
    settings = JobsSettings(celery_retry_backoff=1.0, celery_retry_backoff_max=30.0)
    error = RuntimeError("reset")
    for retries in range(4):
        assert 2**retries * 0.5 <= backoff(retries, error, settings) <= 2**retries
    assert backoff(10, error, settings) == 30.0
    busy = ServiceUnavailable(headers={"Retry-After": "20"})
    assert backoff(0, busy, settings) == 20.0


def test_worker_app_acknowledges_late_and_knows_the_jobs() -> None:
    # What `celery -A {{ cookiecutter.package_name }}.tasks worker` loads.
    conf = celery_app.conf
    assert conf.task_acks_late
    assert conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_soft_time_limit < conf.task_time_limit
    assert ITEMS_REPORT in celery_app.tasks

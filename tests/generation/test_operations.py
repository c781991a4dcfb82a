"""The operator's parts of generation/: the balance watch and its once-per-crossing alert, the metrics' labels
and parsing, the health verdict and the heartbeat file, the JSON log lines and what they are about."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from generation.alerts import Alert, AlertKind, AlertThrottle
from generation.balance_watch import BalanceWatch
from generation.liveness import Heartbeat, Liveness, read_heartbeat
from generation.logs import JsonFormatter, LogContextFilter, bind_log_context
from generation.metrics import Metrics, task_labels, upstream_endpoint
from generation.version import VERSION
from storage.store import Storage
from tests.e2e.harness import wait_until
from tests.fakes.toapis import Endpoint, FakeToAPIs, Fault
from toapis import ToAPIsClient

ROOT = Path(__file__).resolve().parents[2]


def recording_alerts() -> tuple[AlertThrottle, list[Alert]]:
    sent: list[Alert] = []
    return AlertThrottle(sent.append), sent


async def test_the_low_balance_alert_fires_once_per_crossing(
    toapis_fake: FakeToAPIs, toapis_client: ToAPIsClient
) -> None:
    alerts, sent = recording_alerts()
    metrics = Metrics()
    watch = BalanceWatch(toapis_client, threshold=500, alerts=alerts, metrics=metrics)

    for credits, alerted in [(1000, 0), (499, 1), (10, 1), (0, 1), (500, 1), (499, 2), (499, 2)]:
        toapis_fake.remain_credits = credits
        reading = await watch.read()
        assert reading is not None
        assert reading.balance.remain_credits == credits
        assert len(sent) == alerted, credits
    assert [alert.kind for alert in sent] == [AlertKind.LOW_BALANCE, AlertKind.LOW_BALANCE]
    assert "499 credits left; LOW_BALANCE_ALERT is 500" in sent[1].text
    assert watch.last is not None
    assert sample(metrics, "imagine_toapis_balance_credits") == 499


async def test_a_crossing_reaches_the_operators_webhook_once_in_all_however_late_a_process_starts(
    toapis_fake: FakeToAPIs, toapis_client: ToAPIsClient, tmp_path: Path
) -> None:
    # docs/operators.md: "it alerts you once each time the credits fall below it"; with several processes, "the
    # webhook hears of it once in all", the claim kept in alert_bursts "until the problem ends".
    now = [datetime(2026, 12, 6, 10, 0, tzinfo=UTC)]
    toapis_fake.remain_credits = 400
    async with await Storage.open(f"sqlite:///{tmp_path / 'imagine.db'}", clock=lambda: now[0]) as store:
        told: list[Alert] = []
        first_alerts = AlertThrottle(told.append, shared=store.alert_bursts)
        first = BalanceWatch(toapis_client, threshold=500, alerts=first_alerts)
        assert await first.read() is not None
        await first_alerts.idle()
        # Twenty minutes on, the balance still below, a second process starts (or the first restarts).
        now[0] += timedelta(minutes=20)
        second_alerts = AlertThrottle(told.append, shared=store.alert_bursts)
        assert await BalanceWatch(toapis_client, threshold=500, alerts=second_alerts).read() is not None
        await second_alerts.idle()
        assert await first.read() is not None
    assert [alert.to_operator for alert in told] == [True, False]


async def test_a_crossing_that_ended_while_no_process_watched_does_not_silence_the_next(
    toapis_fake: FakeToAPIs, toapis_client: ToAPIsClient, tmp_path: Path
) -> None:
    # The balance fell (told, claimed), the bot stopped, the operator topped the account up, the bot started again:
    # its first reading above ends the old claim, so the next fall is told.
    async with await Storage.open(f"sqlite:///{tmp_path / 'imagine.db'}") as store:
        told: list[Alert] = []
        toapis_fake.remain_credits = 400
        before = AlertThrottle(told.append, shared=store.alert_bursts)
        assert await BalanceWatch(toapis_client, threshold=500, alerts=before).read() is not None
        await before.idle()

        toapis_fake.remain_credits = 5_000
        after_alerts = AlertThrottle(told.append, shared=store.alert_bursts)
        after = BalanceWatch(toapis_client, threshold=500, alerts=after_alerts)
        assert await after.read() is not None
        toapis_fake.remain_credits = 300
        assert await after.read() is not None
        await after_alerts.idle()
    assert [alert.to_operator for alert in told] == [True, True]


async def test_without_a_threshold_the_balance_is_read_but_never_alerted(
    toapis_fake: FakeToAPIs, toapis_client: ToAPIsClient
) -> None:
    alerts, sent = recording_alerts()
    watch = BalanceWatch(toapis_client, threshold=None, alerts=alerts)
    toapis_fake.remain_credits = 0
    assert await watch.read() is not None
    assert sent == []


async def test_an_unlimited_account_is_read_once_and_left_alone(
    toapis_fake: FakeToAPIs, toapis_client: ToAPIsClient
) -> None:
    toapis_fake.unlimited_quota = True
    toapis_fake.remain_credits = 0
    alerts, sent = recording_alerts()
    watch = BalanceWatch(toapis_client, threshold=500, alerts=alerts, interval=0.001)
    async with asyncio.timeout(5):
        await watch.run()  # returns: nothing to watch
    assert len(toapis_fake.requests_to(Endpoint.BALANCE)) == 1
    assert sent == []


async def test_a_balance_that_cannot_be_read_is_logged_and_skipped(
    toapis_fake: FakeToAPIs, toapis_client: ToAPIsClient, caplog: pytest.LogCaptureFixture
) -> None:
    toapis_fake.fail(Endpoint.BALANCE, Fault.unauthorized())
    watch = BalanceWatch(toapis_client, threshold=500, alerts=None)
    assert await watch.read() is None
    assert watch.last is None
    assert "Could not read the ToAPIs balance" in caplog.text
    assert toapis_fake.api_key not in caplog.text


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(metrics.render().decode()):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return found.value
    return None


def test_every_series_exists_from_the_start_and_moves() -> None:
    metrics = Metrics()
    assert sample(metrics, "imagine_jobs_total", outcome="completed") == 0
    assert sample(metrics, "imagine_jobs_total", outcome="content_policy") == 0
    assert sample(metrics, "imagine_rate_limits_total", service="discord") == 0
    metrics.job_accepted(3)
    metrics.job_failed("content_policy", 3)
    metrics.job_failed("something-new", 0)  # an unknown kind never becomes a new label value
    metrics.rate_limited("toapis")
    metrics.watch(queued=lambda: 4, in_flight=lambda: 2, breaker_open=lambda: True)
    assert sample(metrics, "imagine_images_reserved_total") == 3
    assert sample(metrics, "imagine_images_refunded_total") == 3
    assert sample(metrics, "imagine_jobs_total", outcome="content_policy") == 1
    assert sample(metrics, "imagine_jobs_total", outcome="internal") == 1
    assert sample(metrics, "imagine_rate_limits_total", service="toapis") == 1
    assert (sample(metrics, "imagine_queue_depth"), sample(metrics, "imagine_jobs_in_flight")) == (4, 2)
    assert sample(metrics, "imagine_breaker_open") == 1
    # Two Metrics never share a registry.
    assert sample(Metrics(), "imagine_images_reserved_total") == 0


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/v1/images/generations", ("submit", None)),
        ("GET", "/v1/images/generations/task_img_1", ("lookup", "task_img_1")),
        ("POST", "/v1/uploads/images", ("upload", None)),
        ("GET", "/v1/models", ("models", None)),
        ("GET", "/v1/balance", ("balance", None)),
        ("GET", "/files/results/task_img_1/1.png", ("download", None)),
    ],
)
def test_upstream_endpoints_are_a_few_fixed_names(method: str, path: str, expected: tuple[str, str | None]) -> None:
    assert upstream_endpoint(method, path) == expected


def test_task_labels_are_catalogued_values_only() -> None:
    assert task_labels("gpt-image-2", "4k") == ("gpt-image-2", "4k")
    assert task_labels("doubao-seedream-4-5", "1k") == ("doubao-seedream-4-5", "other")  # it has no 1K
    assert task_labels("gpt-image-2", "a prompt-like value") == ("gpt-image-2", "other")
    assert task_labels("a-model-nobody-catalogued", "1k") == ("other", "other")


async def test_the_verdict_names_each_problem() -> None:
    state = {"gateway": True, "pipeline": True, "database": True}

    async def ping() -> None:
        if not state["database"]:
            raise ConnectionError("gone")

    liveness = Liveness(
        gateway_connected=lambda: state["gateway"],
        pipeline_accepting=lambda: state["pipeline"],
        ping_database=ping,
        breaker_open=lambda: True,
    )
    healthy = await liveness.check()
    assert healthy.ok
    assert healthy.breaker_open  # reported, but ToAPIs being down is not the bot being unhealthy
    state.update(gateway=False, database=False)
    report = await liveness.check()
    assert not report.ok
    assert report.reason == "the Discord gateway is not connected; the database does not answer"
    assert report.to_json()["status"] == "unhealthy"


async def test_a_database_that_hangs_is_unhealthy_within_the_timeout() -> None:
    async def hang() -> None:
        await asyncio.Event().wait()

    liveness = Liveness(
        gateway_connected=lambda: True, pipeline_accepting=lambda: True, ping_database=hang, database_timeout=0.01
    )
    assert not (await liveness.check()).database


async def test_the_heartbeat_file_says_what_the_verdict_says(tmp_path: Path) -> None:
    connected = {"value": False}

    async def ping() -> None:
        return None

    liveness = Liveness(
        gateway_connected=lambda: connected["value"], pipeline_accepting=lambda: True, ping_database=ping
    )
    path = tmp_path / "data" / "heartbeat.json"
    heartbeat = Heartbeat(path, liveness, interval=3600)  # only wake() makes it beat again
    runner = asyncio.create_task(heartbeat.run())
    try:
        await wait_until(path.exists, 5, what="the first beat")
        assert read_heartbeat(path) == (False, "the Discord gateway is not connected")
        connected["value"] = True
        heartbeat.wake()
        await wait_until(lambda: read_heartbeat(path)[0], 5, what="a healthy beat")
    finally:
        runner.cancel()
    await heartbeat.stopped()
    assert read_heartbeat(path) == (False, "the bot stopped")
    path.write_text(json.dumps({"ok": True, "reason": "fine", "time": time.time()}))
    assert read_heartbeat(path, now=time.time() + 61)[0] is False
    assert read_heartbeat(tmp_path / "missing.json")[1].startswith("no heartbeat")


def json_records(caplog_records: list[logging.LogRecord]) -> list[dict[str, object]]:
    formatter = JsonFormatter()
    formatter.shard_count = 4
    return [json.loads(formatter.format(record)) for record in caplog_records]


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_json_lines_name_the_job_server_and_shard_of_their_own_task_only() -> None:
    log = logging.getLogger("test.operations")
    handler = Recorder()
    records = handler.records
    handler.addFilter(LogContextFilter())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    guild = (7 << 22) | 5  # shard 7 % 4 = 3
    try:

        async def job() -> None:
            bind_log_context(job="job-1", guild=guild)
            log.info("working on it")
            await asyncio.sleep(0)

        async def other() -> None:
            await asyncio.sleep(0)
            log.info("something else")

        await asyncio.gather(job(), other())
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("with a traceback")
    finally:
        log.removeHandler(handler)
    working, something_else, failed = json_records(records)
    assert working["message"] == "working on it"
    assert (working["job"], working["guild"], working["shard"]) == ("job-1", str(guild), 3)
    assert working["level"] == "INFO"
    assert working["logger"] == "test.operations"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", str(working["time"]))
    assert "job" not in something_else
    assert "guild" not in something_else
    assert "ValueError: boom" in str(failed["exception"])


def test_the_version_is_the_projects() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'^version = "([^"]+)"', text, re.MULTILINE)
    assert match is not None
    assert match.group(1) == VERSION

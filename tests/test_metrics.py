"""deploybot.web.metrics: /metrics through prometheus-client — the same families, names
and labels as before, read from the store and the counters at each scrape, in the text
format 0.0.4 or OpenMetrics as asked; read back with prometheus-client's own parsers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from deploybot.bus.rules import BusStats
from deploybot.config import config_from_mapping
from deploybot.core import Core
from deploybot.health import IrcStatus, Role
from deploybot.plans.book import PlanBook
from deploybot.plans.files import dump_plan
from deploybot.publish import BusOutbox
from deploybot.store import Store
from deploybot.web.metrics import Readings, exposition, metrics_text, registry_for
from tests.planfactory import make_plan, utc

WHEN = utc(2026, 12, 15, 13)
NOW = utc(2026, 12, 15, 14)
ODD_ROUTE = '/a"\\b\nc'


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    """A real core on a tmp SQLite file with two plans, the clock at NOW."""
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "pkgdb2.yaml").write_text(dump_plan(make_plan(when=WHEN)), encoding="utf-8")
    other = make_plan(id="nuancier-1.3", service="nuancier", when=WHEN + timedelta(days=2))
    (plans / "nuancier.yaml").write_text(dump_plan(other), encoding="utf-8")
    store = Store.open(tmp_path / "db.sqlite3")
    book = PlanBook(plans)
    assert not book.reload().problems
    yield Core(
        config=config_from_mapping({"admin_channel": "#ops"}),
        store=store,
        book=book,
        clock=lambda: NOW,
    )
    store.close()


def report(core: Core, minutes: int) -> int:
    return core.store.report_incident(
        service="pkgdb2",
        text="acl page returns 500",
        reporter_nick="alice",
        reporter_account=None,
        channel="#c",
        now=WHEN + timedelta(minutes=minutes),
    ).number


def samples_of(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a text-format page, parsed by prometheus-client, by name and labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_every_family_with_its_labels_parsed_by_prometheus_client(core: Core) -> None:
    """Bus counters (every source, kind and fact present from the start), incidents by
    state, plans, IRC and HTTP requests; a label value with a quote, a backslash and a
    line break reads back exactly; HELP and TYPE as before."""
    first = report(core, 10)
    report(core, 20)
    core.store.fix(first, "bob", None, WHEN + timedelta(minutes=30))
    stats = BusStats()
    stats.count_received("webhook")
    text = metrics_text(
        core,
        bus=stats.as_dict(),
        duplicates=2,
        http_requests={("GET", ODD_ROUTE, "200"): 3},
        irc=IrcStatus(True, login_failures=3),
    )
    samples = samples_of(text)
    assert samples["deploybot_bus_received_total", (("source", "webhook"),)] == 1
    assert samples["deploybot_bus_received_total", (("source", "fedmsg"),)] == 0
    assert samples["deploybot_bus_dropped_total", (("kind", "not-json"),)] == 0
    assert samples["deploybot_bus_facts_total", (("fact", "DeployStarted"),)] == 0
    assert samples["deploybot_bus_decoded_total", ()] == 0
    assert samples["deploybot_bus_duplicates_total", ()] == 2
    assert samples["deploybot_incidents", (("state", "open"),)] == 1
    assert samples["deploybot_incidents", (("state", "fixed"),)] == 1
    assert samples["deploybot_plans_loaded", ()] == 2
    assert samples["deploybot_irc_connected", ()] == 1
    assert samples["deploybot_irc_down_seconds", ()] == 0
    assert samples["deploybot_irc_login_failures_total", ()] == 3
    route = (("method", "GET"), ("route", ODD_ROUTE), ("status", "200"))
    assert samples["deploybot_http_requests_total", route] == 3
    assert "# TYPE deploybot_incidents gauge" in text
    assert "# TYPE deploybot_bus_received_total counter" in text
    assert "# HELP deploybot_plans_loaded Deployment plans in force." in text
    types = {family.name: family.type for family in text_string_to_metric_families(text)}
    assert types["deploybot_http_requests"] == "counter"
    assert types["deploybot_irc_down_seconds"] == "gauge"


def test_every_network_has_its_samples(core: Core) -> None:
    """One sample per chat network the bot runs on, labelled with its name."""
    networks = {"irc": IrcStatus(True), "matrix": IrcStatus(False, "down", 42.9)}
    text = metrics_text(
        core, bus=BusStats().as_dict(), duplicates=0, http_requests={}, irc=None, networks=networks
    )
    samples = samples_of(text)
    assert samples["deploybot_network_connected", (("network", "irc"),)] == 1
    assert samples["deploybot_network_connected", (("network", "matrix"),)] == 0
    assert samples["deploybot_network_down_seconds", (("network", "matrix"),)] == 42
    assert samples["deploybot_network_down_seconds", (("network", "irc"),)] == 0


def test_the_role_and_the_takeovers_of_an_active_standby_pair(core: Core) -> None:
    """deploybot_ha_active says whether this instance is the active one; with PostgreSQL
    (an epoch known) deploybot_ha_takeovers_total is the epoch minus the first one."""
    args: dict[str, Any] = {"bus": BusStats().as_dict(), "duplicates": 0, "http_requests": {}}
    single = samples_of(metrics_text(core, irc=None, **args))
    assert single["deploybot_ha_active", ()] == 1
    assert ("deploybot_ha_takeovers_total", ()) not in single  # SQLite: no pair
    standby = samples_of(metrics_text(core, irc=None, role=Role("standby", "b:2", 4), **args))
    assert standby["deploybot_ha_active", ()] == 0
    assert standby["deploybot_ha_takeovers_total", ()] == 3
    active = samples_of(metrics_text(core, irc=None, role=Role("active", "a:1", 1), **args))
    assert (active["deploybot_ha_active", ()], active["deploybot_ha_takeovers_total", ()]) == (1, 0)


def test_no_irc_families_while_the_irc_status_is_unknown(core: Core) -> None:
    text = metrics_text(core, bus=BusStats().as_dict(), duplicates=0, http_requests={}, irc=None)
    assert "deploybot_irc_" not in text
    assert "deploybot_plans_loaded" in text


def test_the_collector_reads_at_scrape_time(core: Core) -> None:
    """Two scrapes of one registry: the second sees the incident and the request counted
    in between (nothing is copied at registration)."""
    requests: dict[tuple[str, str, str], int] = {}
    registry = registry_for(core, lambda: Readings({}, 0, requests, None))
    first = samples_of(prometheus_client.generate_latest(registry).decode())
    assert first["deploybot_incidents", (("state", "open"),)] == 0
    report(core, 5)
    requests["GET", "/", "200"] = 1
    second = samples_of(prometheus_client.generate_latest(registry).decode())
    assert second["deploybot_incidents", (("state", "open"),)] == 1
    route = (("method", "GET"), ("route", "/"), ("status", "200"))
    assert second["deploybot_http_requests_total", route] == 1


def test_openmetrics_when_asked_text_format_otherwise(core: Core) -> None:
    """Accept: application/openmetrics-text gives OpenMetrics 1.0 ending with # EOF,
    parsed by prometheus-client's OpenMetrics parser; no Accept, or a browser's, gives
    the text format 0.0.4."""
    registry = registry_for(core, lambda: Readings({"received": {"fedmsg": 4}}, 1, {}, None))
    body, content_type = exposition(registry, "application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    text = body.decode("utf-8")
    assert text.endswith("# EOF\n")
    families = {family.name: family for family in openmetrics_families(text)}
    assert families["deploybot_bus_received"].type == "counter"
    [sample] = families["deploybot_bus_received"].samples
    assert (sample.name, sample.labels, sample.value) == (
        "deploybot_bus_received_total",
        {"source": "fedmsg"},
        4,
    )
    for accept in (None, "text/html,application/xhtml+xml,*/*;q=0.8"):
        body, content_type = exposition(registry, accept)
        assert content_type == "text/plain; version=0.0.4; charset=utf-8"
        assert "# EOF" not in body.decode("utf-8")


def test_prometheus_clients_global_registry_is_left_alone(core: Core) -> None:
    """Each server has a registry of its own: the library's global one gains nothing."""
    registry_for(core, lambda: Readings({}, 0, {}, None))
    assert b"deploybot_" not in prometheus_client.generate_latest(prometheus_client.REGISTRY)


def test_the_bus_outbox_gauges_only_when_the_bot_publishes(core: Core) -> None:
    """How many messages wait for the broker's confirm and how old the oldest is; absent
    without amqp_publish."""

    def scrape() -> str:
        return metrics_text(
            core, bus=BusStats().as_dict(), duplicates=0, http_requests={}, irc=None
        )

    assert "deploybot_bus_publish_" not in scrape()
    core.bus_outbox = BusOutbox(core.store, prefix="org", environment="prod", clock=core.now)
    samples = samples_of(scrape())
    assert samples["deploybot_bus_publish_waiting", ()] == 0
    assert samples["deploybot_bus_publish_oldest_seconds", ()] == 0
    key = "org.prod.deploybot.digest"
    core.store.add_bus_message("id-1", key, {}, "{}", NOW - timedelta(minutes=5))
    core.store.add_bus_message("id-2", key, {}, "{}", NOW)
    samples = samples_of(scrape())
    assert samples["deploybot_bus_publish_waiting", ()] == 2
    assert samples["deploybot_bus_publish_oldest_seconds", ()] == 300

"""``/metrics`` (SPEC §6) with prometheus-client: a collector that reads the store and
the counters when Prometheus scrapes, and the official exposition formats.

:class:`DeploybotCollector` yields the families below each time a registry is
collected — nothing is copied into prometheus-client's own counters, so the numbers are
those of the store and of the bus reactor at that moment.  :func:`registry_for` puts it
in a registry of its own (never prometheus-client's global one: one per web server),
and :func:`exposition` encodes that registry as the client asked in its ``Accept``
header (:func:`prometheus_client.exposition.choose_encoder`): the Prometheus text format
0.0.4 by default, OpenMetrics 1.0 (ending ``# EOF``) for ``application/openmetrics-text``.
Escaping of label values, ``# HELP`` and ``# TYPE`` lines are the library's.

The families (names and labels as before this module; counters end ``_total``):
``deploybot_bus_received_total{source}``, ``deploybot_bus_decoded_total``,
``deploybot_bus_dropped_total{kind}``, ``deploybot_bus_facts_total{fact}``,
``deploybot_bus_duplicates_total``, ``deploybot_incidents{state}`` (gauge),
``deploybot_plans_loaded`` (gauge), ``deploybot_irc_connected`` (gauge),
``deploybot_irc_down_seconds`` (gauge) and ``deploybot_irc_login_failures_total`` (the
three only while the IRC status is known),
``deploybot_network_connected{network}`` and ``deploybot_network_down_seconds{network}``
(gauges, one sample per chat network the bot runs on),
``deploybot_bus_publish_waiting`` and ``deploybot_bus_publish_oldest_seconds`` (gauges,
only when the bot publishes on the bus: ``amqp_publish``), ``deploybot_ha_active``
(gauge) and ``deploybot_ha_takeovers_total`` (PostgreSQL only) and
``deploybot_http_requests_total{method,route,status}``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from deploybot.core import Core
from deploybot.health import IrcStatus, Role
from deploybot.store import IncidentState

__all__ = ["DeploybotCollector", "Readings", "exposition", "metrics_text", "registry_for"]

_INCIDENT_STATES: tuple[IncidentState, ...] = ("open", "fixed")
#: The bus counters by one label: (key in BusStats.as_dict(), name, label, help).
_BUS_COUNTS = (
    (
        "received",
        "deploybot_bus_received_total",
        "source",
        "Bus messages received, by source (before decoding).",
    ),
    ("dropped", "deploybot_bus_dropped_total", "kind", "Bus messages dropped, by kind of problem."),
    (
        "facts",
        "deploybot_bus_facts_total",
        "fact",
        "Deploy facts drawn from bus events, by fact type.",
    ),
)


@dataclass(frozen=True)
class Readings:
    """What the HTTP layer and the bus know at scrape time: ``bus`` is
    :meth:`deploybot.bus.rules.BusStats.as_dict`, ``duplicates`` the reactor's repeats,
    ``http_requests`` requests by ``(method, route, status)``, ``irc`` the IRC status
    (None: unknown)."""

    bus: Mapping[str, object]
    duplicates: int
    http_requests: Mapping[tuple[str, str, str], int]
    irc: IrcStatus | None
    #: Every chat network the bot runs on, by name.
    networks: Mapping[str, IrcStatus] = field(default_factory=dict)
    #: Whether this instance is the active one (several on one PostgreSQL database).
    role: Role = field(default_factory=Role)


def _counter_map(value: object) -> dict[str, int]:
    if not isinstance(value, Mapping):
        return {}
    return {str(key): int(count) for key, count in value.items()}


class DeploybotCollector(Collector):
    """The families of the module documentation, read from ``core`` and ``read()`` at
    every collection."""

    def __init__(self, core: Core, read: Callable[[], Readings]) -> None:
        self._core = core
        self._read = read

    def collect(self) -> Iterator[Metric]:
        readings = self._read()
        bus = readings.bus
        for key, name, label, help_text in _BUS_COUNTS:
            family = CounterMetricFamily(name, help_text, labels=[label])
            for value, count in sorted(_counter_map(bus.get(key)).items()):
                family.add_metric([value], count)
            yield family
        decoded = bus.get("decoded")
        yield CounterMetricFamily(
            "deploybot_bus_decoded_total",
            "Bus messages decoded into events.",
            value=decoded if isinstance(decoded, int) else 0,
        )
        yield CounterMetricFamily(
            "deploybot_bus_duplicates_total",
            "Bus events ignored as repeats of a recent message id.",
            value=readings.duplicates,
        )
        counts = self._core.store.incident_counts()
        incidents = GaugeMetricFamily(
            "deploybot_incidents", "Incidents recorded, by state.", labels=["state"]
        )
        for state in _INCIDENT_STATES:
            incidents.add_metric([state], counts.get(state, 0))
        yield incidents
        yield GaugeMetricFamily(
            "deploybot_plans_loaded", "Deployment plans in force.", value=len(self._core.plans)
        )
        irc = readings.irc
        if irc is not None:
            yield GaugeMetricFamily(
                "deploybot_irc_connected",
                "1 when the bot is connected to its IRC server.",
                value=int(irc.connected),
            )
            yield GaugeMetricFamily(
                "deploybot_irc_down_seconds",
                "Seconds since the bot lost (or began seeking) its IRC connection; 0 when on.",
                value=int(irc.down_seconds),
            )
            yield CounterMetricFamily(
                "deploybot_irc_login_failures_total",
                "Transient IRC login failures (services away, no SASL offered); each retried.",
                value=irc.login_failures,
            )
        connected = GaugeMetricFamily(
            "deploybot_network_connected",
            "1 when the bot is connected to the chat network (IRC registered, Matrix synced).",
            labels=["network"],
        )
        down = GaugeMetricFamily(
            "deploybot_network_down_seconds",
            "Seconds since the bot lost (or began seeking) the chat network; 0 when on.",
            labels=["network"],
        )
        for name, network_status in sorted(readings.networks.items()):
            connected.add_metric([name], int(network_status.connected))
            down.add_metric([name], int(network_status.down_seconds))
        yield connected
        yield down
        yield GaugeMetricFamily(
            "deploybot_ha_active",
            "1 when this instance is the active one (on the chat networks, sending); "
            "0 for a standby.",
            value=int(readings.role.role == "active"),
        )
        if readings.role.epoch is not None:  # PostgreSQL
            yield CounterMetricFamily(
                "deploybot_ha_takeovers_total",
                "Times another instance became the active one since the database was "
                "made (the leadership's epoch minus 1).",
                value=max(0, readings.role.epoch - 1),
            )
        if self._core.bus_outbox is not None:  # amqp_publish
            waiting, oldest = self._core.store.bus_outbox_state()
            yield GaugeMetricFamily(
                "deploybot_bus_publish_waiting",
                "Messages decided for the message bus and not yet confirmed by the broker.",
                value=waiting,
            )
            age = 0 if oldest is None else max(0, int((self._core.now() - oldest).total_seconds()))
            yield GaugeMetricFamily(
                "deploybot_bus_publish_oldest_seconds",
                "Age of the oldest message waiting for the broker's confirm; 0 when none waits.",
                value=age,
            )
        requests = CounterMetricFamily(
            "deploybot_http_requests_total",
            "HTTP requests answered, by method, route and status.",
            labels=["method", "route", "status"],
        )
        for (method, route, status), count in sorted(readings.http_requests.items()):
            requests.add_metric([method, route, status], count)
        yield requests


def registry_for(core: Core, read: Callable[[], Readings]) -> CollectorRegistry:
    """A registry of its own holding only a :class:`DeploybotCollector`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DeploybotCollector(core, read))
    return registry


def exposition(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """``registry`` encoded as ``accept`` asks (OpenMetrics when it names
    ``application/openmetrics-text``, else the text format 0.0.4): (body, Content-Type)."""
    encode, content_type = choose_encoder(accept or "")
    return encode(registry), content_type


def metrics_text(
    core: Core,
    *,
    bus: Mapping[str, object],
    duplicates: int,
    http_requests: Mapping[tuple[str, str, str], int],
    irc: IrcStatus | None,
    networks: Mapping[str, IrcStatus] | None = None,
    role: Role | None = None,
) -> str:
    """The families in the text format 0.0.4, once (for tests)."""
    readings = Readings(bus, duplicates, http_requests, irc, dict(networks or {}), role or Role())
    return generate_latest(registry_for(core, lambda: readings)).decode("utf-8")

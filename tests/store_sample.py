"""Makes tests/data/store-v7.sqlite3: a database as deploybot wrote it at schema version 7
(December 2026, before PostgreSQL), with a row in every table, and prints what that
deploybot's own store read back from it, as JSON (tests/data/store-v7.json).

    PYTHONPATH=DIR-WITH-THAT-DEPLOYBOT python tests/store_sample.py OUT.sqlite3 > OUT.json

tests/test_store_upgrade.py opens the file with today's store and compares.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from deploybot.store import Store

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def fill(store: Store) -> None:
    store.report_incident(
        service="PkgDB2",
        text="acl API returns null ⚠ 'quoted' %s",
        reporter_nick="alice",
        reporter_account="alice",
        channel="#pkgdb2-firefight",
        now=minutes(0),
        deploy_id="pkgdb2-2.0",
        minutes_into_deploy=12,
    )
    store.report_incident(
        service="fas", text="login 500", reporter_nick="Bob", reporter_account=None,
        channel="#fedora-admin", now=minutes(3),
    )  # fmt: skip
    store.take(1, "pingou", "pingou", minutes(4))
    store.add_note(1, "nirik", "kevin", "rolling back the cache", minutes(5))
    store.fix(1, "pingou", "pingou", minutes(20), note="hotfix 2.0.1")
    store.add_consumer("PkgDB2", "DGilmore", "ausil", "compose scripts", minutes(1))
    store.add_consumer("pkgdb2", "ralph", None, None, minutes(2))
    store.claim_countdown("pkgdb2-2.0@2026-11-28T13:00:00Z/1d", minutes(0))
    store.claim_countdown("pkgdb2-2.0@2026-11-28T13:00:00Z/4h", minutes(1), late=True)
    store.claim_once("firefight-open:pkgdb2-2.0", minutes(2))
    store.create_page(
        target_nick="Pingou", team="infrastructure", plan_id="pkgdb2-2.0",
        message="incident 2: login 500", sender_nick="Bob", now=minutes(3),
        escalate_at=minutes(13), incident=2, target_account="pingou",
    )  # fmt: skip
    store.create_page(
        target_nick="nirik", team=None, plan_id="pkgdb2-2.0", message="deploy started",
        sender_nick="deploybot", now=minutes(3), escalate_at=minutes(13),
    )  # fmt: skip
    store.ack_pages("pingou", minutes(6), 1, account="pingou", mask="pingou!p@fedora/pingou")
    store.mark_escalated(2, minutes(13))
    store.remember_event("2026-abc", minutes(7), forget_before=minutes(0))
    first = store.add_post("JOIN", "#pkgdb2-firefight", "", minutes(8))
    store.add_post("PRIVMSG", "#pkgdb2-firefight", "[page #1] …", minutes(8))
    store.add_post("TOPIC", "#pkgdb2-firefight", "pkgdb2 2.0 | ⚠ 1 API break", minutes(9))
    store.confirm_posts([first.id])
    store.request_freeze_break(
        plan_id="pkgdb2-2.0", freezes="F41 beta", reason="security fix", nick="pingou",
        account="pingou", mask="pingou!p@fedora/pingou", now=minutes(10),
    )  # fmt: skip
    store.approve_freeze_break(
        "pkgdb2-2.0", nick="nirik", account="kevin", mask="nirik!n@fedora/nirik", now=minutes(11)
    )
    store.record_deploy_event("pkgdb2-2.0", "playbook-start", minutes(12), nick="pingou")
    store.record_drift_run("pkgdb2-2.0", minutes(14), "undeclared", '{"probes": []}')
    store.set_network_value("matrix", "next_batch", "s72595_4483_1934")


def value(item: Any) -> Any:
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return {f.name: value(getattr(item, f.name)) for f in dataclasses.fields(item)}
    if isinstance(item, tuple | list):
        return [value(x) for x in item]
    if isinstance(item, frozenset | set):
        return sorted(value(x) for x in item)
    if isinstance(item, datetime):
        return item.isoformat()
    return item


def read(store: Store) -> dict[str, Any]:
    """Everything the store's methods give back, as JSON values."""
    return {
        "incidents": value(store.list_incidents()),
        "summaries": sorted(
            value(list(s)) for s in store.incident_summaries_between(minutes(-60), minutes(60))
        ),
        "counts": store.incident_counts(),
        "consumers": value(store.consumers("PKGDB2")),
        "countdowns": value(store.countdown_claims()),
        "claimed": store.claimed("firefight-open:pkgdb2-2.0"),
        "pages": value(store.list_pages()),
        "escalations": value(store.pending_escalations(minutes(60))),
        "event_seen": store.event_seen("2026-abc", minutes(0)),
        "posts": value(store.pending_posts()),
        "freeze_breaks": value(store.freeze_breaks()),
        "deploy_events": value(store.deploy_events("pkgdb2-2.0")),
        "drift": value(store.latest_drift_run("pkgdb2-2.0")),
        "network": store.network_value("matrix", "next_batch"),
    }


if __name__ == "__main__":
    with Store.open(sys.argv[1]) as made:
        fill(made)
    with Store.open(sys.argv[1], create=False) as again:
        print(json.dumps(read(again), indent=1, ensure_ascii=False, sort_keys=True))

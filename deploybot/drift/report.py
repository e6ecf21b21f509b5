"""A drift run over a plan's probes: declared vs observed, the stored form, the lines.

:func:`judge` is pure: given what the adapter fetched for each probe (production twice,
staging once, or why it could not), it compares the answers (:mod:`deploybot.drift.diff`)
and matches every breaking difference to the plan's ``api_breaks`` by endpoint: a break
whose ``endpoint`` (a path, ``GET`` and a query string ignored) is the probe's path or a
prefix of it at a ``/`` *declares* the probe's differences.  A breaking difference on a
probe no break declares is an **UNDECLARED API BREAK**.  A declared break whose probes all
ran and showed no breaking difference is "declared, not observed (check the probe)"; one
that no probe covers is "declared, no probe covers it".

A run's verdict, and the exit status of ``deploybot drift``: ``undeclared-drift`` (1) when
any probe shows an undeclared break — a finding, even when other probes failed —, else
``incomplete`` (2) when a probe could not run, else ``no-undeclared-drift`` (0).

Runs are stored as the JSON of :meth:`DriftRun.to_json` (the same document the API
serves), so :func:`latest_run` reads back what was decided, not the answers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from deploybot.drift.diff import Answer, Difference, ProductionUnstableError, compare
from deploybot.drift.shape import parse_path
from deploybot.durations import plural
from deploybot.plans.model import ApiBreak, Plan, Probe
from deploybot.plans.policy import DriftState

__all__ = [
    "EXIT_CODES",
    "MAX_FINDINGS_IN_POST",
    "DeclaredBreak",
    "DriftRun",
    "Fetched",
    "ProbeResult",
    "breaks_covering",
    "endpoint_of",
    "judge",
]

#: Exit status of ``deploybot drift`` for each verdict.
EXIT_CODES = {"no-undeclared-drift": 0, "undeclared-drift": 1, "incomplete": 2}
#: At most this many findings in a countdown post (then a pointer to the full report).
MAX_FINDINGS_IN_POST = 3


@dataclass(frozen=True)
class Fetched:
    """What the adapter got for one probe: the three answers, or why it could not."""

    probe: Probe
    #: (production, production asked again, staging); None when a request failed.
    answers: tuple[Answer, Answer, Answer] | None = None
    #: Why the probe could not run (``staging: connection refused``); "" when it ran.
    error: str = ""


@dataclass(frozen=True)
class ProbeResult:
    """One probe of a run."""

    path: str
    #: ``undeclared-drift``, ``declared-drift``, ``compatible``, ``same`` or ``failed``.
    status: str
    error: str = ""
    production_status: int | None = None
    staging_status: int | None = None
    #: The endpoints of the plan's API breaks that cover this probe.
    declared_by: tuple[str, ...] = ()
    differences: tuple[Difference, ...] = ()

    @property
    def breaking(self) -> tuple[Difference, ...]:
        return tuple(d for d in self.differences if d.breaking)

    @property
    def undeclared(self) -> tuple[Difference, ...]:
        """The breaking differences no API break declares."""
        return () if self.declared_by else self.breaking


@dataclass(frozen=True)
class DeclaredBreak:
    """An API break of the plan and what the probes said of it."""

    endpoint: str
    change: str
    #: ``observed``, ``not-observed`` (its probes ran and saw nothing breaking),
    #: ``not-probed`` (no probe covers it) or ``not-checked`` (a probe covering it failed).
    status: str


@dataclass(frozen=True)
class DriftRun:
    """One run of a plan's probes, as stored and served."""

    plan_id: str
    ran_at: datetime
    probes: tuple[ProbeResult, ...] = ()
    breaks: tuple[DeclaredBreak, ...] = ()

    @property
    def undeclared(self) -> tuple[tuple[ProbeResult, Difference], ...]:
        return tuple((probe, d) for probe in self.probes for d in probe.undeclared)

    @property
    def failed(self) -> tuple[ProbeResult, ...]:
        return tuple(probe for probe in self.probes if probe.status == "failed")

    @property
    def verdict(self) -> str:
        if self.undeclared:
            return "undeclared-drift"
        return "incomplete" if self.failed else "no-undeclared-drift"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def state(self) -> DriftState:
        """What the readiness rule ``no-undeclared-drift`` needs of this run."""
        undeclared = dict.fromkeys(probe.path for probe, _ in self.undeclared)
        return DriftState(
            checked_at=self.ran_at,
            probes=len(self.probes),
            undeclared=tuple(undeclared),
            failed=tuple(probe.path for probe in self.failed),
        )

    # --- text ---------------------------------------------------------------------------

    def summary(self, tz: tzinfo) -> str:
        """One line: ``pkgdb2-2.0 drift (2014-05-20 10:00 UTC): ⚠ 1 UNDECLARED API BREAK …``."""
        head = f"{self.plan_id} drift ({_time(self.ran_at, tz)}):"
        parts = []
        undeclared = self.undeclared
        if undeclared:
            where = ", ".join(dict.fromkeys(probe.path for probe, _ in undeclared))
            count = len(undeclared)
            parts.append(f"⚠ {count} UNDECLARED API BREAK{'S' if count > 1 else ''} ({where})")
        declared = sum(1 for probe in self.probes if probe.status == "declared-drift")
        if declared:
            parts.append(f"declared breaks seen on {plural(declared, 'probe')}")
        unseen = sum(1 for b in self.breaks if b.status in ("not-observed", "not-probed"))
        if unseen:
            parts.append(f"{plural(unseen, 'declared break')} not observed")
        if self.failed:
            parts.append(f"{plural(len(self.failed), 'probe')} could not run")
        if not parts:
            parts.append(f"no undeclared drift on {plural(len(self.probes), 'probe')}")
        elif not undeclared and not self.failed:
            parts.insert(0, "no undeclared drift")
        return f"{head} {'; '.join(parts)}"

    def lines(self, tz: tzinfo) -> list[str]:
        """The full report: the summary, then a line per finding, failure and break."""
        out = [self.summary(tz)]
        for probe in self.probes:
            if probe.status == "failed":
                out.append(f"✘ {probe.path} could not run: {probe.error}")
                continue
            for difference in probe.differences:
                if difference in probe.undeclared:
                    label = "⚠ UNDECLARED API BREAK"
                elif difference.breaking:
                    label = f"declared ({', '.join(probe.declared_by)})"
                else:
                    label = "compatible"
                out.append(f"{label} {probe.path}: {difference.text}")
        for declared in self.breaks:
            if declared.status == "not-observed":
                what = "declared, not observed (check the probe)"
            elif declared.status == "not-probed":
                what = "declared, no probe covers it"
            else:
                continue
            out.append(f"{what}: {declared.endpoint} — {declared.change}")
        return out

    def countdown_lines(self, tz: tzinfo) -> list[str]:
        """The ⚠ lines a countdown post carries: the undeclared findings, or nothing."""
        undeclared = self.undeclared
        if not undeclared:
            return []
        when = _time(self.ran_at, tz)
        out = [
            f"⚠ UNDECLARED API BREAK (staging vs production, probed {when}): "
            f"{probe.path}: {difference.text}"
            for probe, difference in undeclared[:MAX_FINDINGS_IN_POST]
        ]
        more = len(undeclared) - MAX_FINDINGS_IN_POST
        if more > 0:
            out.append(f"⚠ and {plural(more, 'more undeclared difference')}: !drift {self.plan_id}")
        return out

    # --- stored and served form ---------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The document of ``GET /api/v1/deployments/{id}/drift`` (and of the store)."""
        return {
            "plan": self.plan_id,
            "ran_at": self.ran_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "verdict": self.verdict,
            "undeclared": len(self.undeclared),
            "failed": len(self.failed),
            "probes": [
                {
                    "path": probe.path,
                    "status": probe.status,
                    "error": probe.error or None,
                    "production_status": probe.production_status,
                    "staging_status": probe.staging_status,
                    "declared_by": list(probe.declared_by),
                    "differences": [
                        {
                            "kind": d.kind,
                            "path": d.path,
                            "production": d.production,
                            "staging": d.staging,
                            "renamed_to": d.renamed_to or None,
                            "breaking": d.breaking,
                            "declared": d.breaking and bool(probe.declared_by),
                            "text": d.text,
                        }
                        for d in probe.differences
                    ],
                }
                for probe in self.probes
            ],
            "breaks": [
                {"endpoint": b.endpoint, "change": b.change, "status": b.status}
                for b in self.breaks
            ],
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> DriftRun:
        """The run :meth:`to_json` wrote."""
        return cls(
            plan_id=document["plan"],
            ran_at=datetime.fromisoformat(document["ran_at"]).astimezone(UTC),
            probes=tuple(
                ProbeResult(
                    path=probe["path"],
                    status=probe["status"],
                    error=probe["error"] or "",
                    production_status=probe["production_status"],
                    staging_status=probe["staging_status"],
                    declared_by=tuple(probe["declared_by"]),
                    differences=tuple(
                        Difference(
                            d["kind"],
                            d["path"],
                            d["production"],
                            d["staging"],
                            renamed_to=d["renamed_to"] or "",
                        )
                        for d in probe["differences"]
                    ),
                )
                for probe in document["probes"]
            ),
            breaks=tuple(
                DeclaredBreak(b["endpoint"], b["change"], b["status"]) for b in document["breaks"]
            ),
        )

    def dumps(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str) -> DriftRun:
        document: dict[str, Any] = json.loads(text)
        return cls.from_json(document)


def _time(moment: datetime, tz: tzinfo) -> str:
    local = moment.astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname() or ''}".rstrip()


# --- judging ------------------------------------------------------------------------------


def endpoint_of(text: str) -> str | None:
    """The path an API break's ``endpoint`` names, without query or trailing ``/``; None
    when it names no path (free text).

    >>> endpoint_of("GET /api/packager/acl?packagername=x")
    '/api/packager/acl'
    >>> endpoint_of("/") , endpoint_of("the collections API")
    ('', None)
    """
    start = text.find("/")
    if start < 0:
        return None
    path = text[start:].split()[0].split("?", 1)[0].split("#", 1)[0]
    return path.rstrip("/")


def breaks_covering(probe: Probe, breaks: Sequence[ApiBreak]) -> tuple[ApiBreak, ...]:
    """The API breaks whose endpoint is the probe's path or a prefix of it at a ``/``."""
    path = probe.endpoint.rstrip("/")
    found = []
    for api_break in breaks:
        endpoint = endpoint_of(api_break.endpoint)
        if endpoint is not None and (path == endpoint or path.startswith(endpoint + "/")):
            found.append(api_break)
    return tuple(found)


def judge(plan: Plan, fetched: Sequence[Fetched], ran_at: datetime) -> DriftRun:
    """The run of ``plan``'s probes from what was fetched (see the module docstring)."""
    results = [_result(plan, item) for item in fetched]
    breaks = []
    for api_break in plan.api_breaks:
        covering = [
            result
            for item, result in zip(fetched, results, strict=True)
            if api_break in breaks_covering(item.probe, plan.api_breaks)
        ]
        if not covering:
            status = "not-probed"
        elif any(result.breaking for result in covering):
            status = "observed"
        elif any(result.status == "failed" for result in covering):
            status = "not-checked"
        else:
            status = "not-observed"
        breaks.append(DeclaredBreak(api_break.endpoint, api_break.change, status))
    return DriftRun(plan.id, ran_at.astimezone(UTC), tuple(results), tuple(breaks))


def _result(plan: Plan, item: Fetched) -> ProbeResult:
    probe = item.probe
    declared_by = tuple(b.endpoint for b in breaks_covering(probe, plan.api_breaks))
    if item.answers is None:
        return ProbeResult(probe.path, "failed", item.error or "no answer", declared_by=declared_by)
    production, again, staging = item.answers
    statuses = production.status, staging.status
    ignore = [parse_path(path) for path in probe.ignore]
    try:
        differences = compare(production, again, staging, ignore)
    except ProductionUnstableError as error:
        why = f"{error}: asked twice, production must answer alike"
        return ProbeResult(probe.path, "failed", why, *statuses, declared_by=declared_by)
    if not differences:
        status = "same"
    elif not any(d.breaking for d in differences):
        status = "compatible"
    else:
        status = "declared-drift" if declared_by else "undeclared-drift"
    return ProbeResult(probe.path, status, "", *statuses, declared_by, differences)

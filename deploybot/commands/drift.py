"""``!drift ID`` (issue 12): run a plan's drift probe now — staging's API answers against
production's — and say what it found: the full report (a line per finding, failed probe
and declared break not observed), which goes privately when long, with the run's one-line
summary in the channel (:attr:`~deploybot.commands.base.Reply.summary`).

The run is stored like every run (the readiness rule, the API and the deploy page read
it).  A run younger than :data:`~deploybot.drift.runs.REUSE_WITHIN` is answered again
instead of asking staging and production anew, and one run per plan is under way at a
time, so a channel cannot make the bot hammer them.  The fetching is the application's
(:attr:`Core.drift <deploybot.core.Core.drift>`); without it the command says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deploybot.commands.base import Reply, Request, command, example
from deploybot.commands.deploys import find_plan, one_plan_id
from deploybot.errors import DeploybotError

if TYPE_CHECKING:
    from deploybot.core import Core


@command(
    "!drift ID",
    "run the plan's drift probe now: its probes asked of staging and production, the "
    "shapes of the answers compared; ⚠ UNDECLARED API BREAK for a difference no api_breaks "
    "entry declares (long reports privately, the summary in the channel)",
    example(
        "!drift pkgdb2-2.0",
        "pkgdb2-2.0 drift (2026-12-15 13:25 UTC): no undeclared drift; declared breaks "
        "seen on 1 probe",
        "declared (/api/packager/acl) /api/packager/acl?packagername=toshio: .acls: array → null",
    ),
)
async def drift(core: Core, request: Request) -> Reply:
    """The run's report; its summary is what a channel sees when the report goes privately."""
    plan = find_plan(core, one_plan_id(request))
    if not plan.probes:
        raise DeploybotError(
            f"{plan.id} has no probes: list GET paths under probes: in its plan to compare "
            "staging's answers with production's"
        )
    runner = core.drift
    if runner is None:
        raise DeploybotError(f"the drift probe cannot run here; deploybot drift {plan.id} runs it")
    run = runner.recent(plan, request.now) or await runner.run(plan)
    tz = core.config.timezone
    return Reply(tuple(run.lines(tz)), summary=run.summary(tz))


#: The commands of this module, in the order ``!help`` lists them.
COMMANDS = (drift,)

"""Admin commands (SPEC §3): ``!plans reload``.

Admin rights are checked by the dispatcher before any handler here runs (services
accounts or host masks from the config, never bare nicks), so a refused call changes
nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from deploybot.commands.base import Reply, Request, UsageError, command, example
from deploybot.errors import Problem

if TYPE_CHECKING:
    from deploybot.core import Core

log = logging.getLogger(__name__)

#: ``!plans reload`` shows at most this many problems, then says how many more.
MAX_PROBLEMS_SHOWN = 5


def problem_line(problem: Problem, plans_dir: Path) -> str:
    """``pkgdb2.yaml:7: when: …`` — the file named relative to the plans directory."""
    try:
        file = str(Path(problem.file).relative_to(plans_dir))
    except ValueError:
        file = problem.file
    return str(Problem(file, problem.line, problem.key, problem.message))


@command(
    "!plans reload",
    "read the plan files again; bad files keep their last good version and are reported",
    example("!plans reload", "plans reloaded: 2 plans in force"),
    admin=True,
)
async def plans(core: Core, request: Request) -> Reply:
    """Reload the plan book, log who did it, and show the first problems."""
    words = request.args.split()
    if words != ["reload"]:
        got = f", got {request.args.strip()!r}" if words else ""
        raise UsageError(f"the only action is reload{got}")
    report = core.reload_plans()
    log.info("plans reloaded by %s (%s): %s", request.mask, request.account, report.summary())
    lines = [f"plans reloaded: {report.summary()}"]
    shown = report.problems[:MAX_PROBLEMS_SHOWN]
    lines += [problem_line(problem, core.book.directory) for problem in shown]
    more = len(report.problems) - len(shown)
    if more:
        lines.append(f"… and {more} more problems; `deploybot check` lists them all")
    return Reply.say(*lines)


#: The commands of this module, in the order ``!help`` lists them.
COMMANDS = (plans,)

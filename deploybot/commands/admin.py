"""Admin commands (SPEC §3): ``!plans reload``.

Admin rights are checked by the dispatcher before any handler here runs (services
accounts or host masks from the config, never bare nicks), so a refused call changes
nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from deploybot.commands.base import Reply, Request, UsageError, command, example

if TYPE_CHECKING:
    from deploybot.core import Core

log = logging.getLogger(__name__)


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
    report = await core.reload_plans()
    log.info("plans reloaded by %s (%s): %s", request.mask, request.account, report.summary())
    return Reply.say(
        f"plans reloaded: {report.summary()}", *report.problem_lines(core.book.directory)
    )


#: The commands of this module, in the order ``!help`` lists them.
COMMANDS = (plans,)

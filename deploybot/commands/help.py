"""``!help [command]`` (SPEC §3): the commands of the registry it is added to."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from deploybot.commands.base import (
    PREFIX,
    Command,
    Registry,
    Reply,
    Request,
    UsageError,
    command,
    example,
)

if TYPE_CHECKING:
    from deploybot.core import Core


async def help_(registry: Registry, core: Core, request: Request) -> Reply:
    """``!help`` about whatever ``registry`` holds when asked: every command on one line,
    or one command's usage, help and example lines."""
    words = request.args.split()
    if not words:
        names = " ".join(
            f"{PREFIX}{c.name}" + (" (admin)" if c.admin else "")
            for c in registry.commands.values()
        )
        return Reply.say(f"commands: {names} — {PREFIX}help COMMAND for one")
    if len(words) > 1:
        raise UsageError("one command at a time")
    name = words[0].removeprefix(PREFIX)
    found = registry.get(name)
    if found is None:
        raise UsageError(f"no command {PREFIX}{name}; {PREFIX}help lists them")
    who = " (admins only)" if found.admin else ""
    lines = [f"usage: {found.usage}{who} — {found.help}"]
    lines += [f"example: {shown.line}" for shown in found.examples]
    return Reply.say(*lines)


def help_command(registry: Registry) -> Command:
    """``!help`` answering about ``registry`` (:func:`help_` with the registry bound)."""
    declare = command(
        "!help [command]",
        "the list of commands, or one command's usage, help and example",
        example(
            "!help",
            "commands: !deploys !deploy !breaks !ready !uses !consumers !broke !take !note "
            "!fixed !incident !incidents !roster !oncall !page !ack !firefight (admin) "
            "!digest !postmortem !drift !freeze !freezebreak !approve (admin) !freezebreaks "
            "!status !plans (admin) !help — !help COMMAND for one",
        ),
        example(
            "!help broke",
            "usage: !broke [SERVICE] what broke — record an incident; the service defaults "
            "to the deploy that is running",
            "example: !broke pkgdb2 the acl page returns 500",
        ),
    )
    return declare(partial(help_, registry))

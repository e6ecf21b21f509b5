"""``!help [command]`` (SPEC §3): the commands of the registry it is added to."""

from __future__ import annotations

from typing import TYPE_CHECKING

from deploybot.commands.base import PREFIX, Registry, Reply, Request, UsageError

if TYPE_CHECKING:
    from deploybot.core import Core


def register(registry: Registry) -> None:
    """Add ``!help`` to ``registry``; it describes whatever that registry holds when asked."""

    @registry.command(
        "!help [command]",
        "the list of commands, or one command's usage, help and example",
        "!help",
        "!help broke",
    )
    async def help_(core: Core, request: Request) -> Reply:
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
        command = registry.get(name)
        if command is None:
            raise UsageError(f"no command {PREFIX}{name}; {PREFIX}help lists them")
        who = " (admins only)" if command.admin else ""
        lines = [f"usage: {command.usage}{who} — {command.help}"]
        lines += [f"example: {example}" for example in command.examples]
        return Reply.say(*lines)

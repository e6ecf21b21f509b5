"""``!postmortem ID`` (issue 13): where the post-mortem draft of a deploy is — a link to
its web page (``/deployments/{id}/postmortem``), or, without a web server, the command
that prints it."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from deploybot.commands.base import Reply, Request, command, example
from deploybot.commands.deploys import find_plan, one_plan_id

if TYPE_CHECKING:
    from deploybot.config import Config
    from deploybot.core import Core


def web_base(config: Config) -> str | None:
    """``http://HOST:PORT/`` of the bot's web server (its first ``web_public_names``, else
    ``web_host``), or None when there is none (``web_port = 0``)."""
    if config.web_port == 0:
        return None
    host = config.web_public_names[0] if config.web_public_names else config.web_host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    return f"http://{host}:{config.web_port}/"


@command(
    "!postmortem ID",
    "where the post-mortem draft of a deploy is: timeline, numbers, breaks, who was affected",
    example(
        "!postmortem pkgdb2-2.0",
        "post-mortem draft of pkgdb2-2.0: http://127.0.0.1:8080/deployments/pkgdb2-2.0/"
        "postmortem (Markdown: add .md; or: deploybot postmortem pkgdb2-2.0)",
    ),
)
async def postmortem(core: Core, request: Request) -> Reply:
    """A link to the draft's page; the CLI command when there is no web server."""
    plan = find_plan(core, one_plan_id(request))
    base = web_base(core.config)
    command_line = f"deploybot postmortem {plan.id}"
    if base is None:
        return Reply.say(
            f"post-mortem draft of {plan.id}: no web server here (web_port = 0); "
            f"{command_line} --config bot.ini prints it"
        )
    link = f"{base}deployments/{quote(plan.id, safe='')}/postmortem"
    return Reply.say(
        f"post-mortem draft of {plan.id}: {link} (Markdown: add .md; or: {command_line})"
    )


#: The commands of this module, in the order ``!help`` lists them.
COMMANDS = (postmortem,)

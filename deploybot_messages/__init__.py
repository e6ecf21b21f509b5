"""deploybot's messages on Fedora's message bus: their topics, JSON Schemas and texts.

What deploybot publishes through fedora-messaging (README, "deploybot on the bus"), as
Fedora applications ship their ``*-messages`` packages (bodhi-messages, pagure-messages):

* :mod:`deploybot_messages.schema` — the six kinds, each with its topic, schema name, the
  JSON Schema of its body and the functions that read a body (summary, long text, agent,
  usernames).  Standard library only: the bot builds its messages with it, and anything
  may import it without fedora-messaging.
* :mod:`deploybot_messages.messages` — the :class:`fedora_messaging.message.Message`
  classes, registered as entry points in the ``fedora.messages`` group (pyproject.toml),
  so that a fedora-messaging consumer that has deploybot installed gets a
  :class:`~deploybot_messages.messages.DeployStartV1` (validated, with ``summary``,
  ``agent_name``, ``usernames``) for a ``deploybot.deploy.start`` message.  Needs
  fedora-messaging (the ``deploybot[messages]`` extra), which is the only thing that
  loads those entry points.

Nothing here imports the bot (``deploybot``, ``deploybot_plugins``) or its transports.
"""

from deploybot_messages.schema import (
    APP_NAME,
    KINDS,
    SCHEMA_PACKAGE,
    Kind,
    kind_of_schema,
    kind_of_topic,
    one_line,
)

__all__ = [
    "APP_NAME",
    "KINDS",
    "SCHEMA_PACKAGE",
    "Kind",
    "kind_of_schema",
    "kind_of_topic",
    "one_line",
]

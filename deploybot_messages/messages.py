"""deploybot's messages as fedora-messaging classes (entry points in ``fedora.messages``).

A consumer with deploybot installed receives, say, a ``deploybot.incident.new`` message
as an :class:`IncidentNewV1`: fedora-messaging finds the class by the
``fedora_messaging_schema`` header (``deploybot.incident.new.v1``), validates the body
against :attr:`~IncidentNewV1.body_schema` and offers ``summary``, ``str(message)``,
``agent_name``, ``usernames`` and ``app_name``.  The schemas and texts are those of
:mod:`deploybot_messages.schema`.

Needs fedora-messaging (``pip install 'deploybot[messages]'``); it is the only thing
that loads these entry points.
"""

from __future__ import annotations

from typing import Any, ClassVar

from fedora_messaging import message

from deploybot_messages.schema import APP_NAME, Kind, kind_of_schema

__all__ = [
    "DeployCompleteV1",
    "DeployStartV1",
    "DeploybotMessage",
    "DigestV1",
    "IncidentFixedV1",
    "IncidentNewV1",
    "PageEscalatedV1",
]


class DeploybotMessage(message.Message):
    """What every deploybot message has; a subclass names its :class:`Kind`."""

    kind: ClassVar[Kind]

    @property
    def app_name(self) -> str:
        return APP_NAME

    @property
    def summary(self) -> str:
        return self.kind.summary(self.body)

    def __str__(self) -> str:
        return self.kind.text(self.body)

    @property
    def agent_name(self) -> str | None:
        return self.kind.agent_name(self.body)

    @property
    def usernames(self) -> list[str]:
        return self.kind.usernames(self.body)


class DeployStartV1(DeploybotMessage):
    """``deploybot.deploy.start``: a planned deploy's playbook started."""

    kind = kind_of_schema("deploybot.deploy.start.v1")
    topic = kind.topic
    body_schema: ClassVar[dict[str, Any]] = dict(kind.body_schema)


class DeployCompleteV1(DeploybotMessage):
    """``deploybot.deploy.complete``: a planned deploy's playbook finished."""

    kind = kind_of_schema("deploybot.deploy.complete.v1")
    topic = kind.topic
    body_schema: ClassVar[dict[str, Any]] = dict(kind.body_schema)


class IncidentNewV1(DeploybotMessage):
    """``deploybot.incident.new``: an incident was reported."""

    kind = kind_of_schema("deploybot.incident.new.v1")
    topic = kind.topic
    body_schema: ClassVar[dict[str, Any]] = dict(kind.body_schema)


class IncidentFixedV1(DeploybotMessage):
    """``deploybot.incident.fixed``: an incident was fixed."""

    kind = kind_of_schema("deploybot.incident.fixed.v1")
    topic = kind.topic
    body_schema: ClassVar[dict[str, Any]] = dict(kind.body_schema)


class PageEscalatedV1(DeploybotMessage):
    """``deploybot.page.escalated``: a page went unacknowledged and was escalated."""

    kind = kind_of_schema("deploybot.page.escalated.v1")
    topic = kind.topic
    body_schema: ClassVar[dict[str, Any]] = dict(kind.body_schema)


class DigestV1(DeploybotMessage):
    """``deploybot.digest``: the day's incident digest."""

    kind = kind_of_schema("deploybot.digest.v1")
    topic = kind.topic
    body_schema: ClassVar[dict[str, Any]] = dict(kind.body_schema)

"""The SASL login's failures judged by cause (plugins/irc/capabilities.py), on a fake bot
that records the raw lines the plugin sends and how it gave up."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from deploybot_plugins.irc.capabilities import Capabilities


class FakeBot:
    """What the capabilities plugin needs of the bot; records lines and failures."""

    def __init__(self) -> None:
        self.nick = "deploybot"
        self.server_config: Mapping[str, str] = {}
        self.registry: Any = type("Registry", (), {"plugins": {}})()
        self.sasl_username = "deploybot"
        self.sasl_password: str | None = "pw"
        self.sent: list[str] = []
        self.fatal_messages: list[str] = []
        self.transient: list[str] = []

    def send(self, data: str) -> None:
        self.sent.append(data)

    def fatal(self, message: str) -> None:
        self.fatal_messages.append(message)

    def login_failed(self, message: str) -> None:
        self.transient.append(message)


def connect(caps: Capabilities, offered: str = "sasl=PLAIN account-tag") -> None:
    caps.connection_ready()
    caps.on_cap_ls(caps=offered)


def authenticate(caps: Capabilities) -> None:
    connect(caps)
    caps.on_cap_ack(verb="ACK", caps="account-tag sasl")
    assert caps.bot.sent[-1] == "AUTHENTICATE PLAIN"  # type: ignore[attr-defined]
    caps.on_authenticate()


def test_wrong_credentials_at_the_first_login_are_fatal() -> None:
    """904 before this process ever logged in: the config is wrong; fatal, with the keys."""
    bot = FakeBot()
    caps = Capabilities(bot)
    authenticate(caps)
    caps.on_sasl_failure(code="904", text="SASL authentication failed")
    assert bot.transient == []
    assert bot.fatal_messages == [
        "SASL login as deploybot failed: SASL authentication failed (904); check "
        "sasl_username and sasl_password_file / sasl_password_env in [bot]"
    ]


@pytest.mark.parametrize(
    ("offered", "why"),
    [
        ("account-tag extended-join", "the server offers no SASL login (services not linked?)"),
        ("sasl=EXTERNAL account-tag", "the server offers no SASL PLAIN login (only EXTERNAL)"),
    ],
)
def test_no_sasl_or_no_plain_offered_is_transient(offered: str, why: str) -> None:
    """InspIRCd hides `sasl` while its services are away: retry later, never exit."""
    bot = FakeBot()
    caps = Capabilities(bot)
    connect(caps, offered)
    assert bot.fatal_messages == []
    assert bot.transient == [f"SASL login as deploybot failed: {why}"]
    assert "CAP END" not in bot.sent  # no registration without the login


@pytest.mark.parametrize("code", ["902", "905", "906", "908"])
def test_other_sasl_failures_at_the_first_login_are_transient(code: str) -> None:
    bot = FakeBot()
    caps = Capabilities(bot)
    authenticate(caps)
    caps.on_sasl_failure(code=code, text="no")
    assert bot.fatal_messages == []
    assert bot.transient == [f"SASL login as deploybot failed: no ({code})"]


def test_refused_credentials_after_one_good_login_are_transient() -> None:
    """Once this process has logged in, a 904 is the services' trouble (e.g. restarted
    without their database yet): reconnect, never exit."""
    bot = FakeBot()
    caps = Capabilities(bot)
    authenticate(caps)
    caps.on_logged_in(account="deploybot")
    caps.on_sasl_success()
    caps.on_welcome()
    assert bot.sent[-1] == "CAP END"
    authenticate(caps)  # a new connection
    caps.on_sasl_failure(code="904", text="SASL authentication failed")
    assert bot.fatal_messages == []
    assert bot.transient == ["SASL login as deploybot failed: SASL authentication failed (904)"]


def test_authenticating_is_true_until_the_services_answer() -> None:
    """The bot's registration timeout tells 'services did not answer' by this flag."""
    caps = Capabilities(FakeBot())
    authenticate(caps)
    assert caps.authenticating
    caps.on_sasl_success()
    assert not caps.authenticating

"""deploybot.casemapping: names compare as the server compares them (ISUPPORT CASEMAPPING),
never with Unicode folding; the IRC adapter's account tracking and command requests use
the server's mapping."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from deploybot_plugins.irc.accounts import Accounts, irc_lower

from deploybot.casemapping import irc_equal, irc_fold, known


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("straße", "strasse"),
        ("\u212aevin", "kevin"),  # KELVIN SIGN
        ("p\u0131ngou", "pingou"),  # dotless ı
        ("P\u0130NGOU", "pingou"),  # İ
        ("ǅ", "ǆ"),
    ],
)
def test_unicode_never_folds(a: str, b: str) -> None:
    """Only ASCII letters (and rfc1459's four symbols) fold, whatever the mapping."""
    for mapping in ("ascii", "rfc1459", "strict-rfc1459", None, "rfc7613"):
        assert not irc_equal(a, b, known(mapping))
    assert irc_lower(a) != irc_lower(b)


def test_the_three_mappings() -> None:
    """ascii folds A-Z; rfc1459 also []\\~ → {}|^; strict-rfc1459 []\\ but not ~."""
    assert irc_fold("A[]\\~", "ascii") == "a[]\\~"
    assert irc_fold("A[]\\~", "rfc1459") == "a{}|^"
    assert irc_fold("A[]\\~", "strict-rfc1459") == "a{}|~"
    assert irc_fold("A[]\\~", "RFC1459") == "a{}|^"


class FakeBot:
    """What the accounts plugin needs of the bot: a nick, ISUPPORT and a plugin registry
    without the capabilities plugin."""

    def __init__(self, casemapping: str | None) -> None:
        self.nick = "deploybot"
        self.server_config: Mapping[str, str] = (
            {} if casemapping is None else {"CASEMAPPING": casemapping}
        )
        self.registry: Any = type("Registry", (), {"plugins": {}})()
        self.sasl_username = "deploybot"
        self.sasl_password: str | None = None
        self.sent: list[str] = []

    def send(self, data: str) -> None:
        self.sent.append(data)

    def fatal(self, message: str) -> None:
        raise AssertionError(message)

    def login_failed(self, message: str) -> None:
        raise AssertionError(message)


def test_account_tracking_uses_the_server_casemapping() -> None:
    """On an ascii server 'foo{' is another nick than 'foo[': it does not get foo['s
    account; on an rfc1459 server (or one that says nothing) it is the same nick."""
    for mapping, same in (("ascii", False), ("rfc1459", True), (None, True)):
        accounts = Accounts(FakeBot(mapping))
        accounts.on_join(mask="deploybot!b@h", channel="#c")
        accounts.on_join(mask="foo[!u@h", channel="#c", account="fooacct")
        assert accounts.account_of("FOO[") == "fooacct"
        assert (accounts.account_of("foo{") == "fooacct") is same, mapping


def test_account_tracking_never_folds_unicode() -> None:
    """A dotless-ı nick is not the tracked 'pingou'."""
    accounts = Accounts(FakeBot("rfc1459"))
    accounts.on_join(mask="deploybot!b@h", channel="#c")
    accounts.on_join(mask="PİNGOU!u@h", channel="#c", account="pingou")
    assert accounts.account_of("p\u0131ngou") is None
    assert accounts.account_of("pi̇ngou") is None  # what "PİNGOU".lower() gives

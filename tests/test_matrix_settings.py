"""The [matrix] and [matrix.people] sections (plugins/matrix/settings.py): validated like
[deploybot], every problem at once as FILE:LINE: [SECTION] KEY: message; the nick ↔ Matrix ID
mapping (user_pattern, per-person overrides) and channel → room alias."""

from __future__ import annotations

from pathlib import Path

import pytest
from deploybot_plugins.matrix.settings import load_matrix_settings, read_matrix_secret

from deploybot.cli import main
from deploybot.config import InvalidConfig

REPO = Path(__file__).resolve().parent.parent
GOOD = (
    "[matrix]\n"
    "homeserver = https://matrix.example.org/\n"
    "user_id = @deploybot:example.org\n"
    "access_token_file = token   ; relative to this file\n"
)


def write(tmp_path: Path, text: str) -> Path:
    ini = tmp_path / "bot.ini"
    ini.write_text(text, encoding="utf-8")
    return ini


def test_no_matrix_section_means_no_matrix(tmp_path: Path) -> None:
    assert load_matrix_settings(write(tmp_path, "[bot]\nnick = x\n")) is None


def test_defaults_and_mapping(tmp_path: Path) -> None:
    """Defaults: device deploybot, aliases on the bot's server, @{nick}:fedora.im; an
    override in [matrix.people] wins (nicks in any case), and the reverse mapping gives the
    roster nick back, or the Matrix ID itself for anyone else."""
    ini = write(tmp_path, GOOD + "[matrix.people]\nPingou = @pierre:fedoraproject.org\n")
    settings = load_matrix_settings(ini)
    assert settings is not None
    assert settings.homeserver == "https://matrix.example.org"
    assert settings.access_token_file == tmp_path / "token"
    assert (settings.device_name, settings.room_alias_server) == ("deploybot", "example.org")
    assert settings.alias_of("#fedora-admin") == "#fedora-admin:example.org"
    assert settings.mxid_of("PINGOU") == "@pierre:fedoraproject.org"
    assert settings.mxid_of("Kevin") == "@kevin:fedora.im"
    assert settings.nick_of("@pierre:fedoraproject.org") == "pingou"
    assert settings.nick_of("@kevin:fedora.im") == "kevin"
    # the pattern's nick of an overridden person is not that person
    assert settings.nick_of("@pingou:fedora.im") == "@pingou:fedora.im"
    assert settings.nick_of("@kevin:elsewhere.org") == "@kevin:elsewhere.org"


def test_every_problem_with_its_line(tmp_path: Path) -> None:
    ini = write(
        tmp_path,
        "[matrix]\n"
        "homeserver = ftp://matrix.example.org\n"
        "user_id = deploybot\n"
        "access_token_file = token\n"
        "password_file = password\n"
        "user_patern = @{nick}:x.org\n"
        "reply_ttl = 0\n",
    )
    with pytest.raises(InvalidConfig) as caught:
        load_matrix_settings(ini)
    assert str(caught.value).splitlines() == [
        f"{ini}:2: [matrix] homeserver: expected an http:// or https:// URL, got "
        "'ftp://matrix.example.org'",
        f"{ini}:3: [matrix] user_id: 'deploybot' is not a Matrix ID: expected @NAME:SERVER "
        "(NAME in lower case letters, digits and ._=-/+)",
        f"{ini}:5: [matrix] password_file: set only one of access_token_file, "
        "access_token_credential, password_file",
        f"{ini}:6: [matrix] user_patern: unknown key (did you mean user_pattern?); valid keys: "
        "homeserver, user_id, access_token_file, access_token_credential, password_file, "
        "device_name, "
        "room_alias_server, user_pattern, reconnect_delay, reconnect_max_delay, "
        "sync_timeout, reply_ttl",
        f"{ini}:7: [matrix] reply_ttl: must be positive, not '0'",
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("user_pattern = @nick:fedora.im", "expected {nick} once"),
        ("user_pattern = {nick}@fedora.im", "is not a Matrix ID"),
        ("room_alias_server = fedora project", "expected a server name"),
    ],
)
def test_bad_pattern_or_server(tmp_path: Path, line: str, message: str) -> None:
    ini = write(tmp_path, GOOD + line + "\n")
    with pytest.raises(InvalidConfig, match=f"{ini}:5: \\[matrix\\] .*{message}"):
        load_matrix_settings(ini)


def test_people_problems(tmp_path: Path) -> None:
    ini = write(tmp_path, GOOD + "[matrix.people]\npingou = pingou@fedora\n")
    with pytest.raises(InvalidConfig) as caught:
        load_matrix_settings(ini)
    assert str(caught.value) == (
        f"{ini}:6: [matrix.people] pingou: 'pingou@fedora' is not a Matrix ID: expected "
        "@NAME:SERVER (NAME in lower case letters, digits and ._=-/+)"
    )
    people_alone = write(tmp_path, "[matrix.people]\npingou = @pingou:fedora.im\n")
    with pytest.raises(InvalidConfig, match=r"\[matrix.people\] without a \[matrix\] section"):
        load_matrix_settings(people_alone)


def test_a_secret_source_is_required(tmp_path: Path) -> None:
    ini = write(tmp_path, "[matrix]\nhomeserver = http://127.0.0.1:8008\nuser_id = @b:x.org\n")
    with pytest.raises(InvalidConfig, match=r"\[matrix\] access_token_file: required"):
        load_matrix_settings(ini)


def test_check_reports_matrix_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`deploybot check --config` checks [matrix] as `deploybot run` does."""
    ini = write(tmp_path, GOOD + "sync_timeout = soon\n")
    status = main(["check", str(REPO / "deploy-plans"), "--config", str(ini)])
    assert status == 1
    assert capsys.readouterr().err == (
        f"deploybot: {ini}:5: [matrix] sync_timeout: "
        "expected a number of seconds/lines, not 'soon'\n"
    )


def test_the_token_as_a_systemd_credential(tmp_path: Path) -> None:
    """access_token_credential names a credential read from $CREDENTIALS_DIRECTORY at
    start; without the variable, or with a bad name, the error names the key."""
    ini = write(
        tmp_path,
        "[matrix]\nhomeserver = http://127.0.0.1:8008\nuser_id = @b:x.org\n"
        "access_token_credential = matrix-token\n",
    )
    settings = load_matrix_settings(ini)
    assert settings is not None and settings.access_token_credential == "matrix-token"
    (tmp_path / "matrix-token").write_text("syt_secret\n")
    token = read_matrix_secret(settings, str(ini), {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert token == ("syt_secret", None)
    with pytest.raises(InvalidConfig, match=r"\[matrix\] access_token_credential: .*not set"):
        read_matrix_secret(settings, str(ini), {})
    bad = write(
        tmp_path,
        "[matrix]\nhomeserver = http://127.0.0.1:8008\nuser_id = @b:x.org\n"
        "access_token_credential = ../token\n",
    )
    with pytest.raises(InvalidConfig, match=r"bot.ini:4: \[matrix\] access_token_credential"):
        load_matrix_settings(bad)

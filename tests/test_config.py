"""deploybot.config: the [deploybot] section of bot.ini is read and validated once (SPEC §7)."""

from __future__ import annotations

import configparser
from datetime import time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploybot.config import (
    CREDENTIALS_ENV,
    DEFAULTS,
    KEY_HELP,
    VALID_KEYS,
    Address,
    AdminRule,
    Config,
    InvalidConfig,
    bot_section,
    check_bot_section,
    config_from_mapping,
    database_password,
    load_bot_section,
    load_config,
    resolve_webhook_secret,
)
from deploybot.durations import format_duration
from deploybot.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def spec_section() -> dict[str, str]:
    """The [deploybot] example of SPEC §7 (docs/SPEC.md), as key → value."""
    spec = (REPO / "docs" / "SPEC.md").read_text(encoding="utf-8")
    chapter = spec.split("## 7.", 1)[1].split("## 8.", 1)[0]
    block = chapter.split("```ini", 1)[1].split("```", 1)[0]
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(block)
    return dict(parser["deploybot"])


def write_ini(directory: Path, body: str, name: str = "bot.ini") -> Path:
    path = directory / name
    path.write_text(body, encoding="utf-8")
    return path


def section(**values: str) -> str:
    return "[deploybot]\n" + "".join(f"{key} = {value}\n" for key, value in values.items())


# --- defaults -------------------------------------------------------------------------


def test_valid_keys_are_the_spec_keys_plus_fedmsg_crl() -> None:
    """Every SPEC §7 key is valid, in SPEC order, and the only addition is fedmsg_crl."""
    assert [key for key in VALID_KEYS if key != "fedmsg_crl"] == list(spec_section())
    assert "fedmsg_crl" in VALID_KEYS
    assert set(DEFAULTS) == set(KEY_HELP) == set(VALID_KEYS)


def test_default_texts_are_the_spec_values_except_fedmsg_endpoints() -> None:
    """Each default is written as in SPEC §7's example, except fedmsg_endpoints, whose
    example value is an endpoint but whose default is empty (no bus) by decision."""
    spec = spec_section()
    differ = {key for key in spec if spec[key] != DEFAULTS[key]}
    assert differ == {"fedmsg_endpoints"}
    assert spec["fedmsg_endpoints"] == "tcp://127.0.0.1:9940"
    config_from_mapping(spec)  # the SPEC example itself is a valid configuration


def test_defaults_are_the_spec_values() -> None:
    """An empty section gives SPEC §7's defaults (no fedmsg endpoint: no bus)."""
    config = Config.defaults()
    assert config == Config()
    assert config.plans_dir == Path("deploy-plans")
    assert config.database == Path("deploybot.sqlite3")
    assert config.timezone == ZoneInfo("UTC") and config.tz_name == "UTC"
    assert config.admin_channel == "#fedora-admin"
    assert config.announce_channels == ("#fedora-admin",)
    assert config.firefight_channel == "#{service}-firefight"
    assert [format_duration(d) for d in config.countdowns] == [
        "14d", "7d", "3d", "1d", "4h", "1h", "15m", "0",
    ]  # fmt: skip
    assert config.notice_days == 14
    assert config.digest_time == time(22, 0)
    assert config.page_escalate_after == timedelta(minutes=10)
    assert config.countdown_late_after == timedelta(minutes=1)
    assert config.admins == (
        AdminRule("account", "pingou"),
        AdminRule("mask", "*!*@fedora/sysadmin/*"),
    )
    assert config.fedmsg_endpoints == ()
    assert config.fedmsg_topic_prefix == "org.fedoraproject"
    assert config.fedmsg_environment == "prod"
    assert config.fedmsg_validate_signatures is False
    assert config.fedmsg_ca_cert is None and config.fedmsg_crl is None
    assert config.amqp_url == "" and config.amqp_queue == ""
    assert config.amqp_bindings == ("org.fedoraproject.*.ansible.#",)
    assert config.web_host == "127.0.0.1" and config.web_port == 8080
    assert config.webhook_secret == ""


def test_file_without_deploybot_section_gives_all_defaults(tmp_path: Path) -> None:
    """A bot.ini with only irc3's [bot] section is all defaults (paths under its folder)."""
    path = write_ini(tmp_path, "[bot]\nnick = deploybot\n")
    config = load_config(path)
    assert config == config_from_mapping({}, path)
    assert config.plans_dir == tmp_path / "deploy-plans"


# --- every key ------------------------------------------------------------------------


def test_every_key_is_parsed(tmp_path: Path) -> None:
    """A non-default value for every key lands, typed, in its field."""
    path = write_ini(
        tmp_path,
        section(
            plans_dir="/srv/plans",
            database="/var/lib/deploybot/db.sqlite3",
            database_busy_timeout="2.25",
            ha_lease_timeout="4.5",
            timezone="Europe/Paris",
            admin_channel="&ops",
            announce_channels="#fedora-admin #fedora-apps #fedora-admin",
            firefight_channel="#fire-{id}",
            countdowns="1h 2d 0 60m",
            notice_days="0",
            digest_time="7:05",
            page_escalate_after="1h30m",
            countdown_late_after="5s",
            admins="account:nirik mask:kevin!*@fedora/* account:pingou",
            fedmsg_endpoints="tcp://hub.fedoraproject.org:9940 ipc:///tmp/bus inproc://x",
            fedmsg_topic_prefix="org.fedoraproject.stg",
            fedmsg_environment="stg",
            fedmsg_validate_signatures="Yes",
            fedmsg_ca_cert="/etc/pki/fedmsg/ca.crt",
            fedmsg_crl="/etc/pki/fedmsg/crl.pem",
            amqp_url="amqps://fedora:@rabbitmq.fedoraproject.org/%2Fpublic_pubsub",
            amqp_queue="deploybot",
            amqp_bindings="org.fedoraproject.prod.ansible.# org.fedoraproject.*.pagure.*",
            web_host="::1",
            web_port="0",
            web_public_names="Deploybot.Example.org. deploybot-internal",
            web_read_token_file="secrets/read-token",
            webhook_secret="s3cret with spaces, 32 bytes or more",
        ),
    )
    config = load_config(path)
    assert config.plans_dir == Path("/srv/plans")
    assert config.database == Path("/var/lib/deploybot/db.sqlite3")
    assert config.database_busy_timeout == 2.25
    assert config.ha_lease_timeout == 4.5
    assert config.timezone == ZoneInfo("Europe/Paris") and config.tz_name == "Europe/Paris"
    assert config.admin_channel == "&ops"
    assert config.announce_channels == ("#fedora-admin", "#fedora-apps")
    assert config.firefight_channel == "#fire-{id}"
    assert config.countdowns == (timedelta(days=2), timedelta(hours=1), timedelta(0))
    assert config.notice_days == 0
    assert config.digest_time == time(7, 5)
    assert config.page_escalate_after == timedelta(minutes=90)
    assert config.countdown_late_after == timedelta(seconds=5)
    assert config.admins == (
        AdminRule("account", "nirik"),
        AdminRule("mask", "kevin!*@fedora/*"),
        AdminRule("account", "pingou"),
    )
    assert config.fedmsg_endpoints == (
        "tcp://hub.fedoraproject.org:9940",
        "ipc:///tmp/bus",
        "inproc://x",
    )
    assert config.fedmsg_topic_prefix == "org.fedoraproject.stg"
    assert config.fedmsg_environment == "stg"
    assert config.fedmsg_validate_signatures is True
    assert config.fedmsg_ca_cert == Path("/etc/pki/fedmsg/ca.crt")
    assert config.fedmsg_crl == Path("/etc/pki/fedmsg/crl.pem")
    assert config.amqp_url == "amqps://fedora:@rabbitmq.fedoraproject.org/%2Fpublic_pubsub"
    assert config.amqp_queue == "deploybot"
    assert config.amqp_bindings == (
        "org.fedoraproject.prod.ansible.#",
        "org.fedoraproject.*.pagure.*",
    )
    assert config.web_host == "::1" and config.web_port == 0
    assert config.web_public_names == ("deploybot.example.org", "deploybot-internal")
    assert config.web_read_token_file == tmp_path / "secrets" / "read-token"
    assert config.webhook_secret == "s3cret with spaces, 32 bytes or more"


@pytest.mark.parametrize(
    ("text", "expected"),
    [(t, True) for t in ("true", "TRUE", "yes", "On", "1")]
    + [(t, False) for t in ("false", "False", "no", "OFF", "0")],
)
def test_boolean_spellings(text: str, expected: bool) -> None:
    """fedmsg_validate_signatures takes true/false, yes/no, on/off, 1/0 in any case."""
    mapping = {"fedmsg_validate_signatures": text, "fedmsg_ca_cert": "/ca.crt"}
    assert config_from_mapping(mapping).fedmsg_validate_signatures is expected


def test_countdowns_are_sorted_longest_first_without_duplicates() -> None:
    """Countdown offsets come out sorted descending and unique, commas tolerated."""
    config = config_from_mapping({"countdowns": "15m 1d, 0 1h 60m 1d"})
    assert config.countdowns == (
        timedelta(days=1),
        timedelta(hours=1),
        timedelta(minutes=15),
        timedelta(0),
    )


def test_empty_lists_are_allowed() -> None:
    """No countdowns, no admins, no announce channels and no bindings are valid choices."""
    config = config_from_mapping(
        {"countdowns": "", "admins": "", "announce_channels": "", "amqp_bindings": ""}
    )
    assert config.countdowns == ()
    assert config.admins == ()
    assert config.announce_channels == config.amqp_bindings == ()


def test_list_values_may_continue_on_indented_lines(tmp_path: Path) -> None:
    """A list written over indented continuation lines reads like a one-line list."""
    path = write_ini(tmp_path, "[deploybot]\ncountdowns = 7d\n    1d\n    1h\n")
    assert load_config(path).countdowns == (
        timedelta(days=7),
        timedelta(days=1),
        timedelta(hours=1),
    )


def test_mapping_values_may_be_ints_bools_and_lists() -> None:
    """config_from_mapping takes 8080, True and ['a', 'b'] as their ini spellings."""
    config = config_from_mapping(
        {
            "web_port": 9000,
            "fedmsg_validate_signatures": False,
            "announce_channels": ["#a", "#b"],
        }
    )
    assert config.web_port == 9000
    assert config.fedmsg_validate_signatures is False
    assert config.announce_channels == ("#a", "#b")


# --- comments and channels ------------------------------------------------------------


def test_semicolon_comments_are_stripped_but_hash_channels_survive(tmp_path: Path) -> None:
    """'value ; comment' loses the comment; '#fedora-admin' (and 'a;b') stay values."""
    path = write_ini(
        tmp_path,
        "; a whole-line comment\n"
        "# another whole-line comment\n"
        "[deploybot]\n"
        "admin_channel = #fedora-admin ; where admins are\n"
        "announce_channels = #fedora-admin #fedora-apps;x   ; space-separated\n"
        "amqp_bindings = org.fedoraproject.#\n"
        "web_port = 8081\t; tab before the comment\n"
        "webhook_secret = ;\n",
    )
    config = load_config(path)
    assert config.admin_channel == "#fedora-admin"
    assert config.announce_channels == ("#fedora-admin", "#fedora-apps;x")
    assert config.amqp_bindings == ("org.fedoraproject.#",)
    assert config.web_port == 8081
    assert config.webhook_secret == ""


def test_indented_hash_channel_line_is_an_error_not_silently_dropped(tmp_path: Path) -> None:
    """An indented '#chan' continuation (which INI reads as a comment) is reported."""
    path = write_ini(tmp_path, "[deploybot]\nannounce_channels = #a\n    #b #c\n")
    with pytest.raises(InvalidConfig) as caught:
        load_config(path)
    assert caught.value.key == "announce_channels"
    assert f"{path}:3: [deploybot] announce_channels:" in str(caught.value)
    assert "'#b #c'" in str(caught.value)


def test_indented_plain_comments_are_fine(tmp_path: Path) -> None:
    """An indented '# prose comment' line is only a comment, as in any INI file."""
    path = write_ini(tmp_path, "[deploybot]\ncountdowns = 1d\n    # and then\n    1h\n")
    assert load_config(path).countdowns == (timedelta(days=1), timedelta(hours=1))


def test_firefight_channel_for_fills_the_pattern() -> None:
    """The firefighting channel of a plan fills {service} and {id} in the pattern."""
    config = config_from_mapping({"firefight_channel": "#{service}-{id}-fire"})
    assert config.firefight_channel_for("pkgdb2", "pkgdb2-2.0") == "#pkgdb2-pkgdb2-2.0-fire"
    with pytest.raises(ValueError, match="space"):
        config.firefight_channel_for("pkg db", "x")


def test_admin_rules_match_accounts_and_masks() -> None:
    """account: matches the services account (any case); mask: matches nick!user@host
    with * and ? only (so [ ] in nicks are literal)."""
    config = config_from_mapping({"admins": "account:Pingou mask:[kev]?!*@fedora/*"})
    assert config.is_admin("pingou", "someone!u@example.org")
    assert not config.is_admin(None, "pingou!u@example.org")
    assert config.is_admin(None, "[KEV]x!kevin@fedora/sysadmin/kevin")
    assert not config.is_admin(None, "kx!kevin@fedora/sysadmin/kevin")
    assert not config.is_admin(None, "[kev]x!kevin@example.org")
    assert str(config.admins[1]) == "mask:[kev]?!*@fedora/*"


def test_admin_rules_by_address_match_only_senders_from_that_network() -> None:
    """mxid: matches the exact address of a sender from another network; such a sender is
    never matched by account: or mask: (not even mask:*!*@*), an IRC sender never by mxid:."""
    config = config_from_mapping({"admins": "account:pingou mask:*!*@* mxid:@pingou:fedora.im"})
    pingou = Address("mxid", "@pingou:fedora.im")
    assert config.is_admin(None, "@pingou:fedora.im", address=pingou)
    assert str(config.admins[2]) == "mxid:@pingou:fedora.im"
    for other in ("@pingou:fedora.im.evil", "@Pingou:fedora.im", "@pingou2:fedora.im"):
        impostor = Address("mxid", other)
        assert not config.is_admin("pingou", "pingou!pingou@fedora.im", address=impostor)
    irc_only = config_from_mapping({"admins": "account:pingou mask:*!*@*"})
    assert not irc_only.is_admin("pingou", "pingou!x@y", address=pingou)
    mxid_only = config_from_mapping({"admins": "mxid:@pingou:fedora.im"})
    assert not mxid_only.is_admin("@pingou:fedora.im", "@pingou:fedora.im")


@pytest.mark.parametrize("entry", ["mxid:pingou", "mxid:@pingou", "mxid:@:x", "mxid:@a b:x"])
def test_bad_mxid_admin_entry_is_an_error(entry: str) -> None:
    with pytest.raises(InvalidConfig, match="mxid:@NAME:SERVER"):
        config_from_mapping({"admins": entry})


def test_admin_accounts_are_not_unicode_folded() -> None:
    """account:strasse is not the account straße (casefold makes them equal), and
    account:kevin is not a Kelvin-sign (U+212A) 'Kevin'; ASCII case still folds."""
    config = config_from_mapping({"admins": "account:strasse account:kevin"})
    assert not config.is_admin("straße", "x!u@example.org")
    assert not config.is_admin("\u212aevin", "x!u@example.org")
    assert config.is_admin("STRASSE", "x!u@example.org")
    assert config.is_admin("Kevin", "x!u@example.org")


def test_admin_masks_are_not_unicode_folded() -> None:
    """mask:pingou!*@* does not cover a dotless-ı 'pıngou' or 'PİNGOU' (İ, U+0130), nor a
    Kelvin-sign nick for mask:kevin!*@* (re.IGNORECASE matched all three)."""
    config = config_from_mapping({"admins": "mask:pingou!*@* mask:kevin!*@*"})
    assert not config.is_admin(None, "p\u0131ngou!u@example.org")
    assert not config.is_admin(None, "P\u0130NGOU!u@example.org")
    assert not config.is_admin(None, "\u212aevin!u@example.org")
    assert config.is_admin(None, "PINGOU!u@example.org")
    assert config.is_admin(None, "KeViN!u@example.org")


def test_admin_rules_follow_the_server_casemapping() -> None:
    """rfc1459 (the default) folds [ ] \\ ~ into { } | ^; ascii does not, and an unknown
    mapping folds like ascii (never more than the server might)."""
    config = config_from_mapping({"admins": "mask:{kev}!*@* account:foo|bar"})
    assert config.is_admin(None, "[KEV]!u@h")
    assert config.is_admin(None, "[KEV]!u@h", "rfc1459")
    assert not config.is_admin(None, "[KEV]!u@h", "ascii")
    assert not config.is_admin(None, "[KEV]!u@h", "rfc7613")
    assert config.is_admin("FOO\\BAR", "x!u@h", "strict-rfc1459")
    assert not config.is_admin("FOO\\BAR", "x!u@h", "ascii")
    assert config.is_admin(None, "{kev}!u@h", "ascii")


# --- paths ----------------------------------------------------------------------------


def test_relative_paths_resolve_against_the_ini_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """plans_dir, database and the certificates are relative to the ini's folder, not
    to the working directory; absolute paths stay as written."""
    conf = tmp_path / "etc"
    conf.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_ini(
        conf,
        section(
            plans_dir="plans",
            database="../var/db.sqlite3",
            fedmsg_ca_cert="pki/ca.crt",
            fedmsg_crl="/etc/crl.pem",
        ),
    )
    monkeypatch.chdir(elsewhere)
    config = load_config("../etc/bot.ini")
    assert config.plans_dir == conf / "plans"
    assert config.database == conf / "../var/db.sqlite3"
    assert config.fedmsg_ca_cert == conf / "pki/ca.crt"
    assert config.fedmsg_crl == Path("/etc/crl.pem")
    assert config.plans_dir.is_absolute()


def test_tilde_means_the_home_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """'~/x' is under $HOME, not under the ini's folder."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = load_config(write_ini(tmp_path, section(database="~/db.sqlite3")))
    assert config.database == tmp_path / "home" / "db.sqlite3"


def test_mapping_without_file_keeps_relative_paths() -> None:
    """Without a file there is no base folder: relative paths stay relative."""
    assert config_from_mapping({"plans_dir": "p"}).plans_dir == Path("p")


# --- errors ---------------------------------------------------------------------------


def test_unknown_key_lists_the_valid_keys(tmp_path: Path) -> None:
    """A typo is an error naming the key and listing every valid key (with a guess)."""
    path = write_ini(tmp_path, "[deploybot]\n\nweb_prot = 8080\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    error = caught.value
    assert error.key == "web_prot"
    assert error.file == str(path)
    text = str(error)
    assert text.startswith(f"{path}:3: [deploybot] web_prot: unknown key")
    assert "did you mean web_port?" in text
    assert "valid keys: " + ", ".join(VALID_KEYS) in text


def test_keys_are_case_sensitive() -> None:
    """'Timezone' is not 'timezone' (irc3 reads keys case-sensitively too)."""
    with pytest.raises(InvalidConfig) as caught:
        config_from_mapping({"Timezone": "UTC"})
    assert caught.value.key == "Timezone"


BAD_VALUES = [
    ("plans_dir", "", "expected a path"),
    ("database_busy_timeout", "11", "'11': expected seconds from 0 to 10, such as 0.5"),
    ("database_busy_timeout", "-1", "seconds from 0 to 10"),
    ("database_busy_timeout", "5s", "seconds from 0 to 10"),
    ("database_busy_timeout", "nan", "seconds from 0 to 10"),
    ("ha_lease_timeout", "0.5", "'0.5': expected seconds from 1 to 300, such as 10"),
    ("ha_lease_timeout", "301", "seconds from 1 to 300"),
    ("ha_lease_timeout", "10s", "seconds from 1 to 300"),
    ("timezone", "Mars/Base", "'Mars/Base' is not a known time zone"),
    ("timezone", "America", "IANA"),
    ("timezone", "../../etc/passwd", "IANA"),
    ("admin_channel", "fedora-admin", "'fedora-admin' is not a channel"),
    ("admin_channel", "#", "at least one character"),
    ("admin_channel", "#a #b", "space"),
    ("admin_channel", "#a,#b", "comma"),
    ("admin_channel", "#ding\x07", "U+0007"),
    ("announce_channels", "#a b", "'b' is not a channel"),
    ("announce_channels", "#a, #b", "spaces, not commas"),
    ("firefight_channel", "#{service}-{when}", "unknown placeholder {when}"),
    ("firefight_channel", "#{}-fire", "unknown placeholder {}"),
    ("firefight_channel", "#{service!r}", "unknown placeholder {service!r}"),
    ("firefight_channel", "#{service", "not a pattern"),
    ("firefight_channel", "#firefight", "no placeholder"),
    ("firefight_channel", "{service}-firefight", "starts with # or &"),
    ("firefight_channel", "#{service} fire", "space"),
    ("countdowns", "3x", "'3x' is not a duration"),
    ("countdowns", "1d -1h", "'-1h' is not a duration"),
    ("notice_days", "-1", "'-1' is not a number of days"),
    ("notice_days", "soon", "'soon'"),
    ("notice_days", "99999", "at most 3650"),
    ("digest_time", "25:00", "'25:00' is not a time of day"),
    ("digest_time", "22:60", "HH:MM"),
    ("digest_time", "10pm", "HH:MM"),
    ("page_escalate_after", "0", "longer than 0"),
    ("page_escalate_after", "soon", "'soon'"),
    ("countdown_late_after", "0", "longer than 0"),
    ("countdown_late_after", "a minute", "such as 1m or 30s"),
    ("admins", "nick:bob", "'nick:bob'"),
    ("admins", "account:", "'account:'"),
    ("admins", "pingou", "'pingou'"),
    ("admins", "mask:bob", "NICK!USER@HOST"),
    ("fedmsg_endpoints", "http://x", "'http://x' is not a ZeroMQ endpoint"),
    ("fedmsg_endpoints", "tcp://host", "tcp://HOST:PORT"),
    ("fedmsg_endpoints", "tcp://host:0", "tcp://HOST:PORT"),
    ("fedmsg_endpoints", "tcp://host:99999", "tcp://HOST:PORT"),
    ("fedmsg_endpoints", "ipc://", "ipc://PATH"),
    ("fedmsg_topic_prefix", "org fedoraproject", "spaces"),
    ("fedmsg_environment", "production", "'production' is not an environment"),
    ("fedmsg_validate_signatures", "maybe", "'maybe' is not a yes/no value"),
    ("amqp_url", "http://rabbit", "amqp://… or amqps://…"),
    ("amqp_queue", "my queue", "spaces"),
    ("web_host", "", "expected an address"),
    ("web_port", "70000", "'70000' is not a port"),
    ("web_port", "http", "'http' is not a port"),
    ("web_port", "-1", "'-1' is not a port"),
    ("admin_channel", "#a\nPRIVMSG #b :x", "U+000A"),
    ("timezone", "UTC\r\n", "U+000D"),
    ("fedmsg_topic_prefix", "org\0x", "U+0000"),
    ("announce_channels", "#a\r#b", "U+000D"),
    ("amqp_bindings", "a.#\x00", "U+0000"),
    ("web_public_names", "https://deploybot.example.org", "is not a host name"),
    ("web_public_names", "deploybot.example.org:8080", "no scheme, port or path"),
    ("web_public_names", "a..b", "'a..b' is not a host name"),
    ("webhook_secret", "x" * 31, "the secret is 31 bytes: use at least 32"),
]


def test_a_short_webhook_secret_is_refused_without_showing_it() -> None:
    """A webhook_secret under 32 bytes is an error giving its size, never its value (a
    secret that short can be guessed offline from one signed request); 32 bytes pass, and
    so does an empty one (the webhook is off)."""
    with pytest.raises(InvalidConfig) as caught:
        config_from_mapping({"webhook_secret": "s3cret webhook key"})
    assert caught.value.key == "webhook_secret"
    assert "s3cret" not in str(caught.value) and "18 bytes" in str(caught.value)
    assert config_from_mapping({"webhook_secret": "é" * 16}).webhook_secret == "é" * 16
    assert config_from_mapping({"webhook_secret": ""}).webhook_secret == ""


@pytest.mark.parametrize(("key", "value", "shown"), BAD_VALUES)
def test_bad_value_is_an_error_naming_its_key(key: str, value: str, shown: str) -> None:
    """Each kind of bad value raises a ConfigError whose .key and text name the key and
    whose text shows the value (or the offending part) and what is expected."""
    with pytest.raises(ConfigError) as caught:
        config_from_mapping({key: value}, "bot.ini")
    error = caught.value
    assert error.key == key
    assert str(error).startswith(f"bot.ini: [deploybot] {key}: ")
    assert shown in str(error)


@pytest.mark.parametrize("key", [k for k in VALID_KEYS if k not in ("webhook_secret",)])
def test_line_breaks_and_nul_are_rejected_in_every_key(key: str) -> None:
    """No key accepts CR or NUL; a one-value key does not accept LF either."""
    for bad in ("x\ry", "x\0y"):
        with pytest.raises(InvalidConfig) as caught:
            config_from_mapping({key: DEFAULTS[key] + bad})
        assert caught.value.key == key


def test_webhook_secret_with_a_line_break_is_rejected_without_showing_it() -> None:
    """A control character in a secret is an error that does not echo the secret."""
    with pytest.raises(InvalidConfig) as caught:
        config_from_mapping({"webhook_secret": "hunter2\nmore"})
    assert caught.value.key == "webhook_secret"
    assert "hunter2" not in str(caught.value)
    assert "one line" in str(caught.value)


def test_secrets_are_not_shown_in_repr_or_amqp_errors() -> None:
    """repr(Config) hides webhook_secret and amqp_url; a bad amqp_url is not echoed."""
    secret = "hunter2" * 5
    config = config_from_mapping({"webhook_secret": secret, "amqp_url": "amqp://u:pw@h/"})
    assert "hunter2" not in repr(config) and "pw@" not in repr(config)
    with pytest.raises(InvalidConfig) as caught:
        config_from_mapping({"amqp_url": "https://user:hunter2@rabbit/"})
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("password", ["pa/ss", "pa?ss", "pa#ss", "/x", "s3/cr?e#t@"])
def test_an_amqp_url_with_an_unencoded_slash_question_mark_or_hash_is_refused(
    password: str,
) -> None:
    """A password holding / ? or # ends the URL's host early, so the rest of it would be
    read, and logged, as the path: refused with the hint to percent-encode, never shown."""
    with pytest.raises(InvalidConfig) as caught:
        config_from_mapping({"amqp_url": f"amqps://fedora:{password}@rabbit.example.org/%2Fv"})
    assert caught.value.key == "amqp_url"
    assert "percent-encode" in str(caught.value) and "%2F" in str(caught.value)
    assert password not in str(caught.value)


def test_an_amqp_url_with_percent_encoded_credentials_is_accepted() -> None:
    """The same password percent-encoded (and an '@' in the query is no password) loads."""
    url = "amqps://fedora:pa%2Fss%3F%23%40@rabbit.example.org:5671/%2Fpublic?cafile=/a/b"
    assert config_from_mapping({"amqp_url": url}).amqp_url == url


def test_validating_signatures_needs_a_ca_certificate() -> None:
    """fedmsg_validate_signatures = true without fedmsg_ca_cert is an error on the cert."""
    with pytest.raises(InvalidConfig) as caught:
        config_from_mapping({"fedmsg_validate_signatures": "true"})
    assert caught.value.key == "fedmsg_ca_cert"
    assert "fedmsg_validate_signatures" in str(caught.value)


def test_all_problems_are_reported_at_once_in_file_order(tmp_path: Path) -> None:
    """Several mistakes give one error listing each, with its line; .key is the first."""
    path = write_ini(
        tmp_path,
        "[bot]\nnick = deploybot\n\n[deploybot]\n"
        "web_port = 70000\n"
        "timezone = Mars/Base\n"
        "colour = blue\n"
        "admins = nick:bob\n",
    )
    with pytest.raises(InvalidConfig) as caught:
        load_config(path)
    error = caught.value
    assert error.key == "web_port"
    assert [(p.line, p.key) for p in error.problems] == [
        (5, "web_port"),
        (6, "timezone"),
        (7, "colour"),
        (8, "admins"),
    ]
    lines = str(error).splitlines()
    assert len(lines) == 4
    assert lines[0].startswith(f"{path}:5: [deploybot] web_port: '70000'")
    assert lines[3].startswith(f"{path}:8: [deploybot] admins: bad entry 'nick:bob'")


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    """A config file that does not exist is an error naming it."""
    path = tmp_path / "nope.ini"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: configuration file not found"
    assert caught.value.file == str(path)


def test_non_utf8_file_names_the_file(tmp_path: Path) -> None:
    """A file that is not UTF-8 text is an error naming the file."""
    path = tmp_path / "bot.ini"
    path.write_bytes(b"[deploybot]\ntimezone = \xff\n")
    with pytest.raises(ConfigError, match=r"bot\.ini: not UTF-8"):
        load_config(path)


@pytest.mark.parametrize(
    ("body", "line", "key", "shown"),
    [
        ("web_port = 1\n", 1, "", "before any [section] header"),
        ("[deploybot]\nweb_port = 1\njust some words\n", 3, "", "'just some words'"),
        ("[deploybot]\nweb_port = 1\nweb_port = 2\n", 3, "web_port", "given twice"),
        ("[bot]\nnick = a\nnick = b\n", 3, "", "'nick' is given twice in [bot]"),
        ("[deploybot]\n[bot]\n[deploybot]\n", 3, "", "[deploybot] appears twice"),
    ],
)
def test_ini_syntax_errors_name_file_and_line(
    tmp_path: Path, body: str, line: int, key: str, shown: str
) -> None:
    """configparser's errors become a ConfigError naming file, line (and key if any)."""
    path = write_ini(tmp_path, body)
    with pytest.raises(InvalidConfig) as caught:
        load_config(path)
    assert caught.value.key == key
    assert caught.value.problems[0].line == line
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert shown in str(caught.value)


def test_error_without_a_file_still_names_line_and_key() -> None:
    """From a mapping without a file, the text is '[deploybot] KEY: message'."""
    with pytest.raises(InvalidConfig) as caught:
        config_from_mapping({"web_port": "x"}, lines={"web_port": 4})
    assert str(caught.value).startswith("line 4: [deploybot] web_port: ")
    with pytest.raises(InvalidConfig) as caught:
        config_from_mapping({"web_port": "x"})
    assert str(caught.value).startswith("[deploybot] web_port: ")


def test_non_text_mapping_value_is_an_error() -> None:
    """A value that is not text (nor int, bool, list of str) names its key."""
    with pytest.raises(InvalidConfig) as caught:
        config_from_mapping({"web_port": 80.5})
    assert caught.value.key == "web_port"
    assert "expected text" in str(caught.value)


# --- property ---------------------------------------------------------------------------

_keys = st.sampled_from([*VALID_KEYS, "colour", "Timezone", "web_prot"])
_values = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        ["", "0", "-1", "70000", "#x", "x", "account:a", "tcp://h:1", "25:00", "1h 3x", "\r"]
    ),
)


@given(st.dictionaries(_keys, _values, max_size=6))
def test_any_config_error_names_its_key(mapping: dict[str, str]) -> None:
    """Whatever the mapping, the result is a Config or a ConfigError whose text contains
    its key and every problem's key."""
    try:
        config = config_from_mapping(mapping, "bot.ini")
    except ConfigError as error:
        assert error.key
        assert f"[deploybot] {error.key}: " in str(error)
        for problem in getattr(error, "problems", ()):
            assert f"[deploybot] {problem.key}: " in str(error)
    else:
        assert isinstance(config, Config)


@given(st.lists(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=300))))
def test_countdowns_round_trip(offsets: list[timedelta]) -> None:
    """Any list of whole-second offsets, spelled out, reads back sorted and unique."""
    whole = [timedelta(seconds=int(d.total_seconds())) for d in offsets]
    text = " ".join(format_duration(d) for d in whole)
    config = config_from_mapping({"countdowns": text})
    assert config.countdowns == tuple(sorted(set(whole), reverse=True))


# --- the repository's bot.ini and irc3's [bot] -----------------------------------------


def test_repository_bot_ini_loads_as_the_defaults() -> None:
    """The example bot.ini at the top of the repository loads, and equals the defaults."""
    path = REPO / "bot.ini"
    assert load_config(path) == config_from_mapping({}, path)


def test_repository_bot_ini_lists_every_key_with_its_default() -> None:
    """bot.ini's [deploybot] section sets every valid key, each to its default text."""
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(REPO / "bot.ini", encoding="utf-8")
    assert dict(parser["deploybot"]) == dict(DEFAULTS)


def test_bot_section_reads_like_irc3(tmp_path: Path) -> None:
    """bot_section gives [bot] as irc3's own parser does (${#} is '#', ${here} the
    folder, '; x' kept), but every value a string."""
    irc3_utils = pytest.importorskip("irc3.utils")
    path = write_ini(
        tmp_path,
        "[bot]\nnick = deploybot\nport = 6667\nssl = false\n"
        "password = a;b ; c\nlog = ${here}/bot.log\n"
        "autojoins =\n    ${#}fedora-admin\n    fedora-apps\n"
        "[deploybot]\nadmin_channel = #fedora-admin ; comment\n",
    )
    raw = bot_section(path)
    assert raw == {
        "nick": "deploybot",
        "port": "6667",
        "ssl": "false",
        "password": "a;b ; c",
        "log": f"{tmp_path}/bot.log",
        "autojoins": "\n#fedora-admin\nfedora-apps",
    }
    theirs = irc3_utils.parse_config("bot", str(path))
    assert theirs["autojoins"] == ["#fedora-admin", "fedora-apps"]
    assert theirs["password"] == raw["password"] and theirs["log"] == raw["log"]


def test_bot_section_of_the_repository_bot_ini() -> None:
    """The example [bot] joins #fedora-admin on 127.0.0.1:6667 without TLS."""
    raw = bot_section(REPO / "bot.ini")
    assert raw["nick"] == "deploybot"
    assert (raw["host"], raw["port"], raw["ssl"]) == ("127.0.0.1", "6667", "false")
    assert raw["autojoins"].split() == ["#fedora-admin"]
    assert raw["includes"].split() == ["deploybot_plugins.irc.commands"]


def test_bot_section_missing_is_empty_and_bad_reference_is_an_error(tmp_path: Path) -> None:
    """No [bot] gives {}; an unknown ${name} in [bot] is an error naming the file."""
    assert bot_section(write_ini(tmp_path, "[deploybot]\n")) == {}
    path = write_ini(tmp_path, "[bot]\nnick = ${nobody}\n", name="bad.ini")
    with pytest.raises(InvalidConfig) as caught:
        bot_section(path)
    assert str(caught.value).startswith(f"{path}: [bot] nick: ")


@pytest.mark.parametrize(
    "value", ["$3xyz-secret", "ab${nobody}-secret", "x${a:b:c}-secret", "${bot:sasl_password}"]
)
def test_a_bad_interpolation_in_bot_never_shows_the_value(tmp_path: Path, value: str) -> None:
    """A '$' in a [bot] password is an interpolation error that names the key and says
    to write $$, and shows no part of the value (configparser's message quotes it)."""
    path = write_ini(tmp_path, f"[bot]\nsasl_password = {value}\n", name="bad.ini")
    with pytest.raises(InvalidConfig) as caught:
        bot_section(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: [bot] sasl_password: ")
    assert "$$" in message
    assert "secret" not in message.removesuffix("(the value is not shown: it may be secret)")
    assert "xyz" not in message and "nobody" not in message


def test_repository_bot_ini_passes_the_bot_section_check() -> None:
    """The example [bot] is accepted as it is (load_bot_section returns bot_section's dict)."""
    assert load_bot_section(REPO / "bot.ini") == bot_section(REPO / "bot.ini")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("ssl = ture", "ssl: 'ture' is not a yes/no value: expected true or false"),
        ("port = 0", "port: expected a TCP port number, not '0'"),
        ("throttle_rate = -1", "throttle_rate: must be positive, not '-1'"),
        ("reply_ttl = 1m", "reply_ttl: expected a number of seconds/lines, not '1m'"),
        ("throttle_brust = 8", "throttle_brust: unknown key (did you mean throttle_burst?); "),
        ("autojoin = #ops", "autojoin: unknown key (did you mean autojoins?); "),
        (
            "sasl_mechanism = EXTERNAL",
            "sasl_mechanism: unknown key; deploybot's keys in [bot]: sasl_username, ",
        ),
        (
            "sasl_password = x\nsasl_password_env = PW",
            "sasl_password_env: set only one of sasl_password, sasl_password_env",
        ),
    ],
)
def test_bot_section_problems_name_file_line_and_key(
    tmp_path: Path, line: str, message: str
) -> None:
    """A bad [bot] value or a misspelt key is an error `FILE:LINE: [bot] KEY: message`."""
    path = write_ini(tmp_path, f"[bot]\nnick = deploybot\n{line}\n")
    with pytest.raises(InvalidConfig) as caught:
        load_bot_section(path)
    assert str(caught.value).startswith(f"{path}:{2 + line.count(chr(10)) + 1}: [bot] {message}")


def test_bot_section_check_leaves_irc3_and_plugin_keys_alone() -> None:
    """irc3's keys (checked: only port and ssl) and keys like no known one are irc3's."""
    check_bot_section(
        {
            "nick": "deploybot",
            "autojoins": "\n#fedora-admin",
            "includes": "irc3.plugins.log",
            "ssl": "yes",
            "ssl_verify": "CERT_NONE",
            "port": 6697,
            "flood_burst": "9",
            "passwords": "",
            "vhost": "192.0.2.7",
            "log": "/tmp/bot.log",
            "storage": "json://db.json",
            "throttle_burst": "100",
        }
    )


def test_a_home_directory_that_does_not_exist_is_a_config_error(tmp_path: Path) -> None:
    """``~nobody-here/plans``: the key is named, nothing crashes (hypothesis found ``~0``)."""
    ini = tmp_path / "bot.ini"
    ini.write_text("[deploybot]\nplans_dir = ~no-such-user-x/plans\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"plans_dir: '~no-such-user-x/plans': no user"):
        load_config(ini)


def sasl_problems(**bot: str) -> list[str]:
    """The [bot] problems of a section with a SASL secret and ``bot``."""
    try:
        check_bot_section({"nick": "deploybot", "sasl_password_env": "PW", **bot})
    except InvalidConfig as error:
        return [f"{problem.key}: {problem.message}" for problem in error.problems]
    return []


def test_sasl_without_tls_is_refused_unless_loopback_or_allowed() -> None:
    """A SASL secret needs ssl = true, a loopback host (no name resolved) or
    allow_plaintext_sasl = true; without a secret, plaintext is nobody's business."""
    (problem,) = sasl_problems(host="irc.libera.chat", ssl="false")
    assert problem.startswith("sasl_password_env: SASL over plaintext refused:")
    assert "allow_plaintext_sasl = true" in problem
    assert sasl_problems(host="irc.libera.chat")  # irc3's ssl default is false
    assert sasl_problems(host="127.0.0.1.example.org")
    assert sasl_problems(host="0.0.0.0")
    for host in ("localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]", "LocalHost."):
        assert sasl_problems(host=host) == [], host
    assert sasl_problems() == []  # irc3's default host is localhost
    assert sasl_problems(host="irc.libera.chat", ssl="true") == []
    assert sasl_problems(host="irc.libera.chat", allow_plaintext_sasl="yes") == []
    check_bot_section({"host": "irc.libera.chat", "ssl": "false"})  # no SASL: fine
    (bad,) = sasl_problems(host="irc.libera.chat", ssl="true", allow_plaintext_sasl="maybe")
    assert bad.startswith("allow_plaintext_sasl: 'maybe' is not a yes/no value")


# -- the database: an SQLite file or a PostgreSQL URL ------------------------------------------


def test_database_is_a_file_or_a_postgresql_url(tmp_path: Path) -> None:
    """A path stays a path (relative to the ini); postgresql:// (or postgres://) is kept as
    the URL it is; database_password_file is a path read by database_password."""
    url = "postgresql://deploybot@db.fedoraproject.org:5432/deploybot"
    (tmp_path / "pg.password").write_text("correct horse\n")
    config = load_config(
        write_ini(tmp_path, section(database=url, database_password_file="pg.password"))
    )
    assert config.database == url
    assert config.database_password_file == tmp_path / "pg.password"
    assert database_password(config) == "correct horse"
    assert "correct horse" not in repr(config)
    short = "postgres://bot@127.0.0.1/deploybot"
    assert load_config(write_ini(tmp_path, section(database=short))).database == short
    assert database_password(Config.defaults()) is None
    assert load_config(write_ini(tmp_path, section(database="db.sqlite3"))).database == (
        tmp_path / "db.sqlite3"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "postgresql://deploybot:hunter2@127.0.0.1:5432/deploybot",
            "a password in the URL would be logged and shown: put it in database_password_file",
        ),
        ("postgresql://deploybot@127.0.0.1:5432/", "expected postgresql://USER@HOST:PORT/DBNAME"),
        ("postgresql:///deploybot", "expected postgresql://USER@HOST:PORT/DBNAME"),
        ("postgresql://deploybot@127.0.0.1:port/deploybot", "the port is not a number"),
    ],
)
def test_a_bad_postgresql_url_is_an_error_with_its_line(
    tmp_path: Path, value: str, message: str
) -> None:
    path = write_ini(tmp_path, section(timezone="UTC", database=value))
    with pytest.raises(InvalidConfig) as caught:
        load_config(path)
    assert caught.value.key == "database"
    assert f"{path}:3: [deploybot] database: " in str(caught.value)
    assert message in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_a_database_password_file_that_cannot_be_read_names_its_key(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    for name, message in (("missing", "cannot read"), ("empty", "is empty")):
        config = config_from_mapping({"database_password_file": str(tmp_path / name)})
        with pytest.raises(ConfigError) as caught:
            database_password(config, "bot.ini")
        assert str(caught.value).startswith("bot.ini: [deploybot] database_password_file: ")
        assert message in str(caught.value)


# -- secrets in files and systemd credentials --------------------------------------------------

WEBHOOK_SECRET = "0123456789abcdef0123456789abcdef"  # 32 bytes


def test_the_webhook_secret_comes_from_a_file_or_a_systemd_credential(tmp_path: Path) -> None:
    """`webhook_secret_file` (relative to the ini's directory) and
    `webhook_secret_credential` (the file of that name in $CREDENTIALS_DIRECTORY, where
    systemd's LoadCredential= puts it) are read by resolve_webhook_secret, one trailing
    line break dropped; the config alone holds no secret (repr shows none); an inline
    webhook_secret, or none at all, is left as it is."""
    (tmp_path / "webhook.key").write_text(WEBHOOK_SECRET + "\n")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "webhook-secret").write_text(WEBHOOK_SECRET.upper() + "\r\n")
    ini = tmp_path / "bot.ini"
    ini.write_text("[deploybot]\nwebhook_secret_file = webhook.key\n")
    config = load_config(ini)
    assert config.webhook_secret_file == tmp_path / "webhook.key"
    assert config.webhook_secret == ""
    assert resolve_webhook_secret(config, {}).webhook_secret == WEBHOOK_SECRET
    ini.write_text("[deploybot]\nwebhook_secret_credential = webhook-secret\n")
    config = load_config(ini)
    environ = {CREDENTIALS_ENV: str(credentials)}
    resolved = resolve_webhook_secret(config, environ)
    assert resolved.webhook_secret == WEBHOOK_SECRET.upper()
    assert WEBHOOK_SECRET.upper() not in repr(resolved)
    inline = config_from_mapping({"webhook_secret": WEBHOOK_SECRET})
    assert resolve_webhook_secret(inline, environ) is inline
    assert resolve_webhook_secret(Config.defaults(), environ).webhook_secret == ""


def test_a_webhook_secret_that_cannot_be_read_is_an_error_naming_its_key(tmp_path: Path) -> None:
    """No $CREDENTIALS_DIRECTORY (not started by systemd), a credential or file that is
    missing, empty or under 32 bytes: a ConfigError naming the key, the file and what to
    do, never the secret."""
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "short").write_text("s3cret webhook key\n")
    (credentials / "empty").write_text("\n")
    environ = {CREDENTIALS_ENV: str(credentials)}
    cases = [
        ({"webhook_secret_credential": "webhook-secret"}, {}, "$CREDENTIALS_DIRECTORY is not set"),
        ({"webhook_secret_credential": "missing"}, environ, "cannot read"),
        ({"webhook_secret_credential": "empty"}, environ, "is empty"),
        ({"webhook_secret_credential": "short"}, environ, "the secret is 18 bytes"),
        ({"webhook_secret_file": str(tmp_path / "none")}, environ, "cannot read"),
    ]
    for mapping, env, message in cases:
        config = config_from_mapping(mapping)
        with pytest.raises(ConfigError) as caught:
            resolve_webhook_secret(config, env, "bot.ini")
        (key,) = mapping
        assert caught.value.key == key
        assert str(caught.value).startswith(f"bot.ini: [deploybot] {key}: "), caught.value
        assert message in str(caught.value), caught.value
        assert "s3cret" not in str(caught.value)


def test_one_source_of_the_webhook_secret_and_credential_names_are_file_names() -> None:
    """At most one of webhook_secret, webhook_secret_file, webhook_secret_credential; a
    credential name is a plain file name (no slash, not starting with a dot), in
    [deploybot] and in [bot] (sasl_password_credential) alike."""
    with pytest.raises(InvalidConfig) as caught:
        config_from_mapping(
            {"webhook_secret": WEBHOOK_SECRET, "webhook_secret_credential": "webhook-secret"}
        )
    assert caught.value.key == "webhook_secret_credential"
    assert "set only one of webhook_secret, webhook_secret_credential" in str(caught.value)
    for name in ("../etc/shadow", ".hidden", "a/b", "with space"):
        with pytest.raises(InvalidConfig, match="is not a credential name"):
            config_from_mapping({"webhook_secret_credential": name})
        with pytest.raises(InvalidConfig, match=r"\[bot\] sasl_password_credential: .* is not a"):
            check_bot_section({"sasl_password_credential": name}, "bot.ini")
    check_bot_section({"sasl_password_credential": "sasl-password"})
    with pytest.raises(InvalidConfig, match="set only one of sasl_password_file, sasl_passw"):
        check_bot_section(
            {"sasl_password_file": "/etc/pw", "sasl_password_credential": "sasl-password"}
        )

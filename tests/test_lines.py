"""deploybot.lines: nothing from outside can inject protocol lines or overflow one."""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st

from deploybot.lines import (
    CONTINUATION,
    MAX_LINE_BYTES,
    RELAY_PREFIX_ALLOWANCE,
    fit,
    fits,
    message_lines,
    one_line,
    shorten,
)


def test_one_line_removes_cr_lf_nul() -> None:
    """CR, LF and NUL become spaces, so a second protocol line cannot be smuggled in."""
    text = one_line("deploy\r\nPRIVMSG #x :pwned\0tail")
    assert text == "deploy PRIVMSG #x :pwned tail"
    assert not set("\r\n\0") & set(text)


def test_one_line_keeps_unicode_and_removes_formatting_and_ctcp() -> None:
    """Non-ASCII text (⚠, é) survives cleaning; CTCP's \\x01 and IRC formatting codes
    (bold, colour with its numbers, hex colour, reset, monospace, reverse, italics,
    strikethrough, underline) are removed, so nobody makes the bot /me or recolour."""
    assert one_line("⚠ API BREAK café") == "⚠ API BREAK café"
    assert one_line("\x01ACTION waves\x01") == "ACTION waves"
    assert one_line("\x02bold\x02 \x0304,12red\x03 \x0399x \x04FF0000hex\x0f") == "bold red x hex"
    assert one_line("\x11m\x16r\x1di\x1es\x1fu") == "mrisu"


def test_fit_cuts_on_spaces_within_budget() -> None:
    """A long sentence is cut between words, each piece within the byte budget."""
    pieces = fit("alpha beta gamma delta epsilon", 12)
    assert pieces == ["alpha beta", "gamma delta", "epsilon"]


def test_fit_never_splits_a_multibyte_character() -> None:
    """A run of 3-byte characters is cut on character boundaries."""
    pieces = fit("⚠" * 10, 8)
    assert all(len(p.encode()) <= 8 for p in pieces)
    assert "".join(pieces) == "⚠" * 10


@given(st.text(max_size=3000))
def test_message_lines_are_single_bounded_lines(text: str) -> None:
    """Any text gives lines with no CR/LF/NUL, each at most 512 bytes with CRLF."""
    for line in message_lines("PRIVMSG", "#fedora-admin", text):
        assert not set("\r\n\0") & set(line)
        assert len(line.encode("utf-8")) + 2 <= MAX_LINE_BYTES + 2
        assert line.startswith("PRIVMSG #fedora-admin :")


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=2000))
@example("word " * 200)
@example("é" * 700)
def test_message_lines_keep_every_word(text: str) -> None:
    """Splitting loses no visible text: the pieces, without the "… " that starts each
    continuation, rejoin to the cleaned text (modulo spaces)."""
    lines = message_lines("PRIVMSG", "#a", text)
    bodies = [line.split(" :", 1)[1] for line in lines]
    body = "".join(bodies[:1] + [piece.removeprefix(CONTINUATION) for piece in bodies[1:]])
    assert "".join(body.split()) == "".join(one_line(text).split())


def test_target_cannot_inject_either() -> None:
    """A target with CR/LF (e.g. a channel from a plan) is cleaned too."""
    (line,) = message_lines("PRIVMSG", "#a\r\nQUIT", "hi")
    assert line == "PRIVMSG #aQUIT :hi"


def test_unicode_line_separators_become_spaces() -> None:
    """NEL, U+2028 and U+2029 (line breaks for clients and splitlines) are removed too."""
    assert one_line("a\x85b\u2028c\u2029d") == "a b c d"


def test_shorten_cuts_on_a_character_boundary_with_an_ellipsis() -> None:
    """A topic over its byte budget ends in …, never half a character; one within it is
    kept as it is."""
    assert shorten("pkgdb2 deploy", 20) == "pkgdb2 deploy"
    assert fits("pkgdb2 deploy", 13) and not fits("pkgdb2 deploy", 12)
    cut = shorten("é" * 10, 9)  # 20 bytes into 9: three é (6) and … (3)
    assert cut == "ééé…" and fits(cut, 9)


@given(st.text(max_size=60), st.integers(4, 80))
def test_shorten_always_fits_and_keeps_a_prefix(text: str, budget: int) -> None:
    cut = shorten(text, budget)
    assert fits(cut, budget)
    assert cut == text or text.startswith(cut.removesuffix("…").rstrip())


_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@given(st.text(max_size=3000), st.sampled_from(["PRIVMSG", "NOTICE"]))
def test_user_text_never_starts_a_line_and_no_control_survives(text: str, command: str) -> None:
    """Whatever text someone gives, after the bot's own words: the first line starts with
    the bot's words and every other one with "… "; no control character (CTCP \\x01,
    formatting, C0, DEL, C1, line separators) is left anywhere, so no line is a CTCP
    ACTION and none begins with the user's "!"."""
    lines = message_lines(command, "#fedora-admin", f"incident #3 recorded: {text}")
    prefix = f"{command} #fedora-admin :"
    for index, line in enumerate(lines):
        assert line.startswith(prefix)
        body = line.removeprefix(prefix)
        assert body.startswith("incident #3 recorded:" if index == 0 else "… "), body
        assert not _CONTROLS.search(line), repr(line)
        assert len(line.encode("utf-8")) <= MAX_LINE_BYTES - RELAY_PREFIX_ALLOWANCE


def test_a_long_reply_with_commands_and_ctcp_in_it_gives_no_line_a_user_began() -> None:
    """The reproduction of issue 11: a !broke text cut right before "!op" or
    "\\x01ACTION" gave a continuation line starting with it."""
    budget = MAX_LINE_BYTES - RELAY_PREFIX_ALLOWANCE - len("PRIVMSG #a :")
    filler = "x" * (budget - len("incident: ") - 1)
    for payload in ("!op everyone", "\x01ACTION pwns\x01"):
        first, second = message_lines("PRIVMSG", "#a", f"incident: {filler} {payload}")
        assert first == f"PRIVMSG #a :incident: {filler}"
        assert second == f"PRIVMSG #a :… {one_line(payload)}"

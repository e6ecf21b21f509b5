"""deploybot.lines: nothing from outside can inject protocol lines or overflow one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from deploybot.lines import MAX_LINE_BYTES, fit, fits, message_lines, one_line, shorten


def test_one_line_removes_cr_lf_nul() -> None:
    """CR, LF and NUL become spaces, so a second protocol line cannot be smuggled in."""
    text = one_line("deploy\r\nPRIVMSG #x :pwned\0tail")
    assert text == "deploy PRIVMSG #x :pwned tail"
    assert not set("\r\n\0") & set(text)


def test_one_line_keeps_irc_formatting_and_unicode() -> None:
    """Bold/colour codes and non-ASCII text (⚠, é) survive cleaning."""
    assert one_line("\x02⚠ API BREAK\x02 café") == "\x02⚠ API BREAK\x02 café"


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
def test_message_lines_keep_every_word(text: str) -> None:
    """Splitting loses no visible text: the pieces rejoin to the cleaned text (modulo spaces)."""
    lines = message_lines("PRIVMSG", "#a", text)
    body = "".join(line.split(" :", 1)[1] for line in lines)
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

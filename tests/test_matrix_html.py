"""plugins/matrix/html.py: a Matrix message's body and formatted_body. Everything written by
people or plans is escaped; the only markup is the bot's (bold API breaks, links, mentions)."""

from __future__ import annotations

from deploybot_plugins.matrix.html import highlighted, message_content
from hypothesis import given
from hypothesis import strategies as st


def test_text_is_escaped_and_links_clickable() -> None:
    content = message_content('<b>x</b> & "y" see https://example.org/a?b=1&c=2.')
    assert content["body"] == '<b>x</b> & "y" see https://example.org/a?b=1&c=2.'
    assert content["format"] == "org.matrix.custom.html"
    assert content["formatted_body"] == (
        "&lt;b&gt;x&lt;/b&gt; &amp; &quot;y&quot; see "
        '<a href="https://example.org/a?b=1&amp;c=2">https://example.org/a?b=1&amp;c=2</a>.'
    )
    assert content["m.mentions"] == {}


def test_an_api_break_is_bold() -> None:
    content = message_content("⚠ API BREAK: /api/<x> — migration: none")
    assert content["formatted_body"] == (
        "<strong>⚠ API BREAK: /api/&lt;x&gt; — migration: none</strong>"
    )


def test_a_highlight_line_mentions_the_people_it_names() -> None:
    known = {"pingou": "@pierre:fedora.im", "nirik": "@nirik:fedora.im"}
    assert highlighted("plan problems: 2", known) is None
    assert highlighted("pingou nobody: hi", known) is None
    mentions = highlighted("Pingou nirik: deploy <started>", known)
    assert mentions == {"Pingou": "@pierre:fedora.im", "nirik": "@nirik:fedora.im"}
    content = message_content("Pingou nirik: deploy <started>", mentions)
    assert content["m.mentions"] == {"user_ids": ["@pierre:fedora.im", "@nirik:fedora.im"]}
    assert content["formatted_body"] == (
        '<a href="https://matrix.to/#/@pierre:fedora.im">Pingou</a> '
        '<a href="https://matrix.to/#/@nirik:fedora.im">nirik</a>: deploy &lt;started&gt;'
    )


@given(st.text())
def test_no_markup_comes_from_the_text(text: str) -> None:
    """Whatever the text, the formatted body has no < but the bot's own tags, and no
    control character reaches the body."""
    content = message_content(text)
    formatted = content["formatted_body"].removeprefix("<strong>").removesuffix("</strong>")
    outside = formatted.replace("</a>", "")
    while '<a href="' in outside:
        start = outside.index('<a href="')
        outside = outside[:start] + outside[outside.index('">', start) + 2 :]
    assert "<" not in outside and ">" not in outside
    assert not any(ord(c) < 32 or ord(c) == 127 for c in content["body"])


def test_the_lines_of_one_answer_are_one_message() -> None:
    """Several lines: one body with line breaks, <br> between the formatted lines; each
    API BREAK line bold on its own."""
    content = message_content(["pkgdb2 <2.0>", "⚠ API BREAK: /acl", "see https://x.org/a"])
    assert content["body"] == "pkgdb2 <2.0>\n⚠ API BREAK: /acl\nsee https://x.org/a"
    assert content["formatted_body"] == (
        "pkgdb2 &lt;2.0&gt;<br><strong>⚠ API BREAK: /acl</strong><br>"
        'see <a href="https://x.org/a">https://x.org/a</a>'
    )

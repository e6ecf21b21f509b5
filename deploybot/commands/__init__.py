"""IRC-free command handlers: a request in, reply lines out (SPEC §3).

Each command is a module-level handler, ``async (core, request) -> Reply``, declared with
:func:`~deploybot.commands.base.command` beside its usage line, a one-line help and its
examples; an :func:`~deploybot.commands.base.example` carries the reply it gets, and the
test suite runs every one.  Each module lists its commands in ``COMMANDS``;
:func:`~deploybot.commands.registry.build_registry` puts them in a fresh registry.  The IRC
adapter only builds a :class:`~deploybot.commands.base.Request` and sends the
:class:`~deploybot.commands.base.Reply`.
"""

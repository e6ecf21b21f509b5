"""IRC-free command handlers: a request in, reply lines out (SPEC §3).

Each command sits with its usage line, a one-line help and an example that the test
suite runs.  The IRC adapter only builds a :class:`~deploybot.commands.base.Request`
and sends the :class:`~deploybot.commands.base.Reply`.
"""

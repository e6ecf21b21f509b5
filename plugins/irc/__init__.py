"""The IRC adapter over irc3: connection, CAP/SASL, accounts, output pacing, commands.

:mod:`.bot` is the irc3 bot class (one output path, reconnects, rejoins),
:mod:`.capabilities` CAP and SASL, :mod:`.accounts` who is logged in as whom,
:mod:`.throttle` the token bucket, :mod:`.commands` the plugin that hands ``!`` commands
to :mod:`deploybot.commands`.
"""

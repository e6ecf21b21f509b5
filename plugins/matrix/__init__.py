"""The Matrix adapter over mautrix-python: a second chat network beside IRC.

:mod:`.settings` is the ``[matrix]`` section; :mod:`.bot` the connection (login, the sync
loop with its position kept in the store, rooms by alias, direct-message rooms, the
durable posts, rate limits and reconnects); :mod:`.html` the message bodies.
"""

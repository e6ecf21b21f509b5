"""Real IRC servers on loopback for the integration tests, and a raw IRC client.

- `tests.ircd.servers`: inspircd 3, atheme-services 7.2 (NickServ + SASL) linked to it, and
  ngircd 26, each started from a config template in its own directory on free 127.0.0.1
  ports, stopped, killed and restarted on the same ports.
- `tests.ircd.client`: `IrcClient`, a small asyncio client (no irc3) that records every
  line it receives and waits for lines with a timeout.
- `tests.ircd.fixtures`: the pytest fixtures built on both (imported by `tests/conftest.py`).
"""

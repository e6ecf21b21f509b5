"""irc3, bus and web adapters for deploybot (installed as ``deploybot_plugins``).

Each module translates one protocol to the core in ``deploybot`` and back.
"""

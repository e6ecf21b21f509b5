"""deploybot: an IRC bot that makes risky deployments boring.

This package is the domain core (plans, policy, schedule, config, storage, CLI).
It imports neither irc3 nor aiohttp; the adapters live in ``plugins/``
(installed as ``deploybot_plugins``).
"""

__version__ = "0.1.0"

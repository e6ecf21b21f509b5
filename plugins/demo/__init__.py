"""``deploybot demo``: a whole deploy day on this machine (SPEC §8).

:mod:`.composition` puts it together and is the command's entry point (:func:`main`);
:mod:`.day` holds the day's facts, schedule, plan and config; :mod:`.script` plays it;
:mod:`.people` are the scripted IRC users and the transcript; :mod:`.processes` the bus
publisher and the bot process; :mod:`.ircd` the small built-in IRC server.
"""

from .composition import Demo, Options, main, run

__all__ = ["Demo", "Options", "main", "run"]

"""The staging-vs-production drift probe (SPEC §1 ``probes``, §2 ``no-undeclared-drift``).

Ask staging and production the same GET questions, infer the *shape* of each JSON answer
and report how staging's differs from production's — the 2014 pkgdb2 break (``[]``
became ``null``) is a shape change.  Production is asked twice: what differs between its
own two answers is noise and never reported (Twitter's Diffy).

* :mod:`deploybot.drift.shape` — JSON paths and shape inference (pure, foundation);
* :mod:`deploybot.drift.diff` — one probe's answers compared, noise subtracted (pure,
  foundation);
* :mod:`deploybot.drift.report` — a run over a plan's probes: differences matched to the
  plan's ``api_breaks``, the stored form, the lines people read (may import plans).

Nothing here does I/O: the fetching is an adapter (``deploybot_plugins.drift``).  This
``__init__`` imports nothing, so :mod:`deploybot.plans` may use the path syntax of
:mod:`deploybot.drift.shape` without importing the rest.
"""

"""Deploy day: countdowns, the firefighting channel, pages, the roster and the digest.

Owns the decisions of the day a plan runs: which countdown line is due
(:mod:`.countdowns`), opening and closing the firefighting channel (:mod:`.firefight`),
paging and escalation (:mod:`.paging`), who is on shift (:mod:`.roster`), the incident
digest (:mod:`.digest`) and its daily post (:mod:`.digestpost`), and what was recorded
about one deploy for its post-mortem (:mod:`.record`).  :mod:`.day` composes
the parts that need a transport (:class:`~deploybot.deployday.day.DeployDay`) beside the
core, which knows nothing of this package.

May import the foundation, :mod:`deploybot.plans`, :mod:`deploybot.store`,
:mod:`deploybot.texts` and :mod:`deploybot.core`; never the bus, the web documents,
the commands or the CLI.  It speaks through :class:`deploybot.outbox.Outbox`.
"""

"""What the web server serves, as documents: the versioned API, pages, the calendar feed.

Owns the JSON contract of ``/api/v1`` (:mod:`.api`), the HTML pages (:mod:`.pages`) and
the iCalendar feed (:mod:`.calendarfeed`) and the SVG picture of a deploy's day
(:mod:`.timeline`).  No HTTP here: ``plugins/web.py`` adapts
these to aiohttp.  Libraries that write a format (Jinja2 for the pages) are welcome here:
only the transports (irc3, aiohttp, pyzmq) stay out of the core.

May import everything below it: the foundation, :mod:`deploybot.plans`,
:mod:`deploybot.store`, :mod:`deploybot.texts`, :mod:`deploybot.core`,
:mod:`deploybot.deployday` and :mod:`deploybot.bus`; never the commands or the CLI.
"""

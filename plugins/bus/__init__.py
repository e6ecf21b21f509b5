"""The bus transports: fedmsg over ZeroMQ (:mod:`.fedmsg_source`) and fedora-messaging over
AMQP (:mod:`.amqp_source`).  Each decodes with :mod:`deploybot.bus.events` and hands the
event to :class:`deploybot.bus.reactor.BusReactor`.
"""

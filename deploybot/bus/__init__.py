"""Bus events: decoding deploy messages and acting on them, whatever their transport.

Owns the one event type and its strict decoding (:mod:`.events`), the rules that turn an
event into facts about plans (:mod:`.rules`) and the single entry point that acts on
them (:mod:`.reactor`).  Transports (ZeroMQ, AMQP, the webhook) live in ``plugins/``.

May import the foundation, :mod:`deploybot.plans`, :mod:`deploybot.store`,
:mod:`deploybot.texts`, :mod:`deploybot.core` and :mod:`deploybot.deployday`.
"""

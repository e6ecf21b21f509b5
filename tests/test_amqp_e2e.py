"""End to end: `deploybot run bot.ini` as a real process, consuming fedora-messaging from a
real RabbitMQ (tests/rabbitmq.py) and speaking on a real IRC server (ngircd, relaxed).

The test publishes as fedora-messaging does (amq.topic, routing key = topic, JSON body,
its headers and message id) and watches the channels with a plain IRC client.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aio_pika
import pytest

from deploybot_messages import messages as classes
from tests.botprocess import (
    BotProcesses,
    bot_lines,
    bot_process_fixture,  # noqa: F401  (the bot_process fixture)
    joined,
    nick_eq,
    wait_said,
)
from tests.busmessages import bound_queue, drain
from tests.ircd.fixtures import IrcClientFactory
from tests.ircd.servers import NgircdServer
from tests.planfactory import make_plan
from tests.rabbitmq import (
    RabbitmqServer,
    delete_queue,
    fedora_message,
    publish,
    queue_counts,
    sample,
)

pytestmark = pytest.mark.irc

ADMIN = "#admin"
FIREFIGHT = "#pkgdb2-firefight"  # firefight_channel's default, #{service}-firefight
START = "org.fedoraproject.prod.ansible.playbook.start"
COMPLETE = "org.fedoraproject.prod.ansible.playbook.complete"
TIMEOUT = 30.0


@pytest.mark.slow
async def test_fedora_messaging_playbook_start_and_complete_are_announced_on_irc(
    rabbitmq: RabbitmqServer,
    ngircd_server: NgircdServer,
    irc_client: IrcClientFactory,
    bot_process: BotProcesses,
) -> None:
    """With `amqp_url` set, the bot consumes from the broker: fedora-messaging's
    ansible.playbook.start of a planned playbook (the sample's, run by dudemcpants) on the
    plan's day — 20 minutes before its window, so that nothing but the bus opens firefighting —
    makes the bot join the firefighting channel and say "deploy of pkgdb2 started by
    dudemcpants" there and in the admin channel; the complete message (the sample) makes
    it say "finished ok". With `amqp_publish`, the bot publishes both as
    deploybot.deploy.start and .complete, which a fedora-messaging consumer reads as
    DeployStartV1 and DeployCompleteV1, once each. On SIGTERM it exits 0 and its private
    queue is gone."""
    # a start up to an hour early is the planned deploy (eventrules.EARLY_GRACE)
    when = (datetime.now(UTC) + timedelta(minutes=20)).replace(second=0, microsecond=0)
    bot = bot_process(
        port=ngircd_server.port,
        nick="deploybot",
        admin_channel=ADMIN,
        countdowns="0",
        deploybot_settings={"amqp_url": rabbitmq.url, "amqp_publish": "true"},
    )
    bot.write_plan(make_plan(when=when, playbooks=("update_ticketkey.yml",)))
    published = await bound_queue(rabbitmq.url)  # what the bot publishes: deploybot.#
    watcher = await joined(irc_client, ngircd_server.port, "watcher", [ADMIN, FIREFIGHT])
    await bot.start(watcher, ADMIN)
    consuming = await bot.wait_log("amqp: consuming", timeout=TIMEOUT)
    assert "amqp: consuming private queue deploybot-" in consuming, consuming
    queue = consuming.split("private queue ", 1)[1].split()[0]
    assert not [
        m
        for m in watcher.messages
        if m.command == "JOIN" and nick_eq(m.nick, bot.nick) and nick_eq(m.target, FIREFIGHT)
    ], "firefighting opened before the bus said anything"

    complete = sample("fedora-messaging.ansible.playbook.complete")
    start_body = {
        "playbook": complete["body"]["playbook"],
        "userid": "dudemcpants",
        "check": False,
        "extra_vars": {},
        "inventory": ["inventory/"],
        "playbook_checksum": "0123abcd",
    }
    mark = watcher.mark()
    await publish(
        rabbitmq.url,
        START,
        fedora_message(
            start_body,
            schema="ansible.playbook.start",
            headers={"fedora_messaging_user_dudemcpants": True},
        ),
    )
    await bot.wait_joined(watcher, FIREFIGHT, since=mark, timeout=TIMEOUT)
    started = "deploy of pkgdb2 started by dudemcpants (update_ticketkey.yml)"
    await wait_said(watcher, bot.nick, started, target=ADMIN, since=mark, timeout=TIMEOUT)
    await wait_said(watcher, bot.nick, started, target=FIREFIGHT, since=mark, timeout=TIMEOUT)

    mark = watcher.mark()
    headers = complete["headers"]
    message: aio_pika.Message = fedora_message(
        complete["body"], schema=headers["fedora_messaging_schema"], headers=headers
    )
    await publish(rabbitmq.url, COMPLETE, message)
    finished = "deploy of pkgdb2 finished ok (update_ticketkey.yml)"
    await wait_said(watcher, bot.nick, finished, target=ADMIN, since=mark, timeout=TIMEOUT)
    await wait_said(watcher, bot.nick, finished, target=FIREFIGHT, since=mark, timeout=TIMEOUT)
    said = [m.text for m in bot_lines(watcher, bot.nick)]
    assert sum(started in text for text in said) == 2  # once per channel, no redelivery
    assert sum(finished in text for text in said) == 2

    start_message, complete_message = await drain(rabbitmq.url, published, 2, settle=1.0)
    assert isinstance(start_message, classes.DeployStartV1)
    assert isinstance(complete_message, classes.DeployCompleteV1)
    assert start_message.topic == "org.fedoraproject.prod.deploybot.deploy.start"
    assert start_message.summary == (
        "dudemcpants started the deploy of pkgdb2 2.0 (pkgdb2-2.0) ⚠ API BREAK"
    )
    assert complete_message.body["result"] == "ok"
    await delete_queue(rabbitmq.url, published)

    await bot.stop(watcher)
    log = bot.log_text()
    assert "Traceback" not in log and "ERROR" not in log, log
    assert "guest:***@" in log and "guest:guest@" not in log  # the password is masked
    with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):
        await queue_counts(rabbitmq.url, queue)  # exclusive, auto-deleted with the bot

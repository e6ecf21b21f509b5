"""Shared pytest configuration."""

from hypothesis import HealthCheck, settings

from tests.driftdata import serve  # noqa: F401  (local aiohttp apps for the drift probe)
from tests.ircd.fixtures import *  # noqa: F403  (IRC server fixtures and their hooks)
from tests.postgres import *  # noqa: F403  (the PostgreSQL server fixtures)
from tests.rabbitmq import *  # noqa: F403  (the RabbitMQ broker fixtures)
from tests.storedb import *  # noqa: F403  (store_db: the store's tests on both backends)
from tests.synapse import *  # noqa: F403  (the Matrix homeserver fixtures)

# the e2e marker: applied by fixture use, and a test that starts a process without it fails
pytest_plugins = ["tests.markers"]

# Property tests check behaviour, not speed: on a loaded 2-core CI machine generation can
# be slow, so neither per-example deadlines nor the "too slow" health check apply.
settings.register_profile("deploybot", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("deploybot")

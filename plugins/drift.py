"""The drift probe's fetching: a plan's probes asked of staging and production over HTTP
(aiohttp's client).  The comparison is the core's (:mod:`deploybot.drift`).

Each probe is one GET to staging and two to production (one after the other: what
differs between them is noise), each of them bounded:

* ``probe_timeout`` for the whole GET — connecting, TLS, headers, body, redirects — so a
  slow-loris server or an endless body ends there;
* ``probe_max_size`` for the body (``Content-Length`` checked first, then counted as it
  is read, decompressed): more is not read;
* TLS certificates verified against the system's CAs (a self-signed certificate is
  refused);
* redirects followed only on the same scheme, host and port (at most
  :data:`MAX_REDIRECTS`); one to another host is not followed, and the bearer token is
  only ever sent to the environment's own host;
* at most ``probe_concurrency`` GETs under way at once, for all probes together;
* ``User-Agent: deploybot/VERSION (drift probe)``; ``Authorization: Bearer TOKEN`` from
  ``probe_token_file_staging`` / ``probe_token_file_production``.

Whatever goes wrong (DNS, refused, timeout, TLS, too large, a bad answer) is that probe's
error (``staging: connection refused by 127.0.0.1:8443``), never an exception out of
:meth:`ProbeFetcher.__call__`.  Bodies are parsed in a worker thread (a 5 MB answer
takes a tenth of a second) so the IRC connection goes on meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import ssl
from collections.abc import Mapping, Sequence

import aiohttp
from yarl import URL

from deploybot import __version__
from deploybot.config import Config, read_token_file
from deploybot.drift.diff import Answer, read_answer
from deploybot.drift.report import Fetched
from deploybot.plans.model import Plan, Probe

__all__ = ["MAX_REDIRECTS", "USER_AGENT", "ProbeFetcher"]

log = logging.getLogger(__name__)

USER_AGENT = f"deploybot/{__version__} (drift probe)"
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024


class _Failed(Exception):
    """One GET went wrong; the message is for people."""


class ProbeFetcher:
    """Asks a plan's probes (:data:`deploybot.drift.runs.Fetch`)."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        max_size: int = 8 * 1024 * 1024,
        concurrency: int = 4,
        tokens: Mapping[str, str | None] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.timeout = timeout
        self.max_size = max_size
        self.concurrency = concurrency
        self.tokens = dict(tokens or {})
        self.ssl_context = ssl_context or ssl.create_default_context()

    @classmethod
    def from_config(cls, config: Config) -> ProbeFetcher:
        """The fetcher of ``[deploybot]``'s ``probe_*`` keys; reads the token files now
        (:class:`~deploybot.errors.ConfigError` naming the key when one is unusable)."""
        tokens = {
            environment: None if path is None else read_token_file(path, key)
            for environment, key, path in (
                ("staging", "probe_token_file_staging", config.probe_token_file_staging),
                (
                    "production",
                    "probe_token_file_production",
                    config.probe_token_file_production,
                ),
            )
        }
        return cls(
            timeout=config.probe_timeout.total_seconds(),
            max_size=config.probe_max_size,
            concurrency=config.probe_concurrency,
            tokens=tokens,
        )

    async def __call__(self, plan: Plan) -> Sequence[Fetched]:
        """Every probe of ``plan``, in plan order."""
        connector = aiohttp.TCPConnector(limit=self.concurrency, ssl=self.ssl_context)
        async with aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            auto_decompress=True,
            trust_env=False,
        ) as session:
            gate = asyncio.Semaphore(self.concurrency)
            return await asyncio.gather(
                *(self._probe(session, gate, plan, probe) for probe in plan.probes)
            )

    async def _probe(
        self, session: aiohttp.ClientSession, gate: asyncio.Semaphore, plan: Plan, probe: Probe
    ) -> Fetched:
        production = _join(plan.production.url, probe.path)
        staging = _join(plan.staging.url, probe.path)

        async def production_twice() -> tuple[Answer, Answer]:
            first = await self._get(session, gate, production, "production")
            return first, await self._get(session, gate, production, "production")

        both, on_staging = await asyncio.gather(
            production_twice(),
            self._get(session, gate, staging, "staging"),
            return_exceptions=True,
        )
        errors = [outcome for outcome in (both, on_staging) if isinstance(outcome, BaseException)]
        if errors:
            return Fetched(probe, None, "; ".join(_reason(error) for error in errors))
        assert isinstance(both, tuple) and isinstance(on_staging, Answer)
        return Fetched(probe, (both[0], both[1], on_staging))

    async def _get(
        self, session: aiohttp.ClientSession, gate: asyncio.Semaphore, url: URL, environment: str
    ) -> Answer:
        """One GET (following same-host redirects) read into an :class:`Answer`."""
        try:
            async with gate, asyncio.timeout(self.timeout):
                status, content_type, body = await self._read(session, url, environment)
        except _Failed as error:
            raise _Failed(f"{environment}: {error}") from None
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise _Failed(
                f"{environment}: no complete answer within {self.timeout:g}s from {_where(url)}"
            ) from None
        except aiohttp.ClientError as error:
            raise _Failed(f"{environment}: {_client_error(error, url)}") from None
        return await asyncio.to_thread(read_answer, status, content_type, body)

    async def _read(
        self, session: aiohttp.ClientSession, url: URL, environment: str
    ) -> tuple[int, str, bytes]:
        start = url
        headers: dict[str, str] = {}
        token = self.tokens.get(environment)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        for _ in range(MAX_REDIRECTS + 1):
            async with session.get(url, headers=headers, allow_redirects=False) as response:
                location = response.headers.get("Location")
                if response.status in _REDIRECTS and location:
                    target = response.url.join(URL(location))
                    if _origin(target) != _origin(start):
                        raise _Failed(
                            f"{_where(url)} redirects to another place ({_where(target)}): "
                            "not followed"
                        )
                    url = target
                    continue
                length = response.content_length
                if length is not None and length > self.max_size:
                    raise _Failed(
                        f"the answer from {_where(url)} is {length} bytes, more than "
                        f"probe_max_size ({self.max_size}): not read"
                    )
                body = bytearray()
                async for chunk in response.content.iter_chunked(_CHUNK):
                    body += chunk
                    if len(body) > self.max_size:
                        raise _Failed(
                            f"the answer from {_where(url)} is larger than probe_max_size "
                            f"({self.max_size} bytes): not read further"
                        )
                return response.status, response.headers.get("Content-Type", ""), bytes(body)
        raise _Failed(f"more than {MAX_REDIRECTS} redirects from {_where(start)}")


def _join(base: str, path: str) -> URL:
    """``https://host/pkgdb`` + ``/api/x?y=1``: the path under the base URL's path.

    The plan refuses probe paths that could leave the base (``..``, ``//``, a scheme).
    """
    return URL(base.rstrip("/") + path, encoded=False)


def _origin(url: URL) -> tuple[str, str | None, int | None]:
    return url.scheme, url.host, url.port


def _where(url: URL) -> str:
    """``https://admin.stg.fedoraproject.org:443``: scheme, host and port, no path."""
    return f"{url.scheme}://{url.host}:{url.port}" if url.host else str(url)


def _client_error(error: aiohttp.ClientError, url: URL) -> str:
    where = _where(url)
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        return f"TLS certificate of {where} not trusted: {error.certificate_error}"
    if isinstance(error, aiohttp.ClientSSLError):
        return f"TLS with {where} failed: {error}"
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return f"cannot resolve {url.host} (DNS)"
    if isinstance(error, aiohttp.ClientConnectorError):
        number = error.os_error.errno
        reason = os.strerror(number) if number else str(error.os_error)
        return f"cannot connect to {where}: {reason.lower()}"
    if isinstance(error, aiohttp.ClientPayloadError):
        return f"the answer from {where} was cut off or malformed"
    if isinstance(error, aiohttp.ClientResponseError):
        return f"{where} sent a malformed HTTP answer: {error.message}"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return f"{where} closed the connection without an answer"
    return f"{where}: {type(error).__name__}"


def _reason(error: BaseException) -> str:
    if isinstance(error, _Failed):
        return str(error)
    ref = secrets.token_hex(3)
    log.error("drift probe: internal error (ref %s)", ref, exc_info=error)
    return f"internal error (ref {ref}); the admins can find it in the log"

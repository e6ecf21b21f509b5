"""Real IRC server processes on 127.0.0.1 for the integration tests.

Each server gets its own directory, a config written from the templates below, free ports
(found by binding port 0) and a log file (`<name>.log`: everything the process printed, one
header line per start). `start()` returns only once the process owns its listening sockets
(checked in /proc) and answers a registration; `stop()` (SIGTERM, then SIGKILL), `kill()`
(SIGKILL) and `restart()` (same ports) always reap the process group; `close()` also removes
the server's private /tmp directory. The `a…` methods do the same without blocking the
event loop, for tests whose bot must keep running while its server goes away and comes back.
Every server runs under `setpriv --pdeathsig KILL`, so even a killed test run leaves none.

- `InspircdServer`: inspircd 3 with a STOCK client port (the flood control of a default
  install: a bot that floods it gets killed) and a RELAXED client port (no fake lag, big
  queues: for test clients and load), plus a server port for services.
- `AthemeServices`: atheme-services 7.2 linked to an `InspircdServer` (NickServ, SaslServ).
- `InspircdWithServices`: the two together: accounts, SASL and `account-tag`.
- `NgircdServer`: ngircd 26, one client port, stock flood penalty or none.

Gotchas (measured with inspircd 3.15, atheme 7.2.12, ngircd 26.1):
- inspircd completes a client registration only in its once-a-second background pass, so
  every connect takes ~1 s there (ngircd: ~1 ms). Connect clients concurrently.
- inspircd keeps running when a listener fails to bind (it only prints a warning): hence the
  /proc ownership check. ngircd exits instead.
- inspircd refuses to start with `m_sasl` loaded but no `<sasl target>`: the module is only
  loaded together with the services link.
- atheme refuses to run as root and exits at once without a writable `-p PIDFILE`; it runs
  as nobody with its files in a /tmp directory it owns (pytest's tmp dirs are 0700 root).
  With `recontime = 1` it relinks ~1 s after inspircd comes back.
- ngircd defaults to 5 connections per IP, 9-character nicks and 10 channels per user: all
  raised here.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import itertools
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path
from string import Template

from tests.ircd.client import Message

HOST = "127.0.0.1"
SERVICES_NAME = "services.test"
REQUIRED_BINARIES = ("inspircd", "ngircd", "atheme-services", "setpriv")
INSTALL_HINT = (
    ".ci/run installs them (apt-get install inspircd ngircd atheme-services); "
    "set DEPLOYBOT_SKIP_IRC=1 to skip the IRC tests instead"
)
UNPRIVILEGED_USER = ("nobody", "nogroup")


class ServerError(RuntimeError):
    """A server did not start (or not in time) or died; the message carries its log tail."""


class PortInUse(ServerError):
    """Another process holds a port the server was meant to listen on."""


def missing_binaries(names: tuple[str, ...] = REQUIRED_BINARIES) -> list[str]:
    """The executables among `names` that are not on PATH."""
    return [name for name in names if shutil.which(name) is None]


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for the local ports of outgoing connections."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


#: How long a listener that is not the starting server's must stay on one of its ports
#: before the port counts as taken (see `ManagedServer._wait_listening`).
SQUATTER_GRACE = 2.0

#: Server ports are drawn below the ephemeral range (see `free_port`).
_SERVER_PORTS = range(20000, min(_ephemeral_range()[0], 32768))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bound, then released).

    Drawn at random *below* the kernel's ephemeral range: a server restarted on the same
    port (broker and IRC restart tests) must find it free again, and a port from the
    ephemeral range can meanwhile become the local end of any outgoing connection on the
    machine (seen: RabbitMQ's restart failing with eaddrinuse).  Someone else may still
    take it before the server binds it; servers detect that (`PortInUse`) and retry."""
    rng = secrets.SystemRandom()
    for _ in range(200):
        port = rng.choice(_SERVER_PORTS)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # a crowded machine
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# -- who owns a listening port (Linux /proc) ------------------------------------------------

_LOOPBACK_OR_ANY = {
    "0100007F",  # 127.0.0.1
    "00000000",  # 0.0.0.0
    "00000000000000000000000000000000",  # ::
    "0000000000000000FFFF00000100007F",  # ::ffff:127.0.0.1
}


def _listening_inodes(port: int) -> set[str]:
    """Inodes of LISTEN sockets that would conflict with binding 127.0.0.1:`port`."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as f:
            next(f, None)
            for row in f:
                fields = row.split()
                address, _, hex_port = fields[1].partition(":")
                if fields[3] == "0A" and int(hex_port, 16) == port and address in _LOOPBACK_OR_ANY:
                    inodes.add(fields[9])
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    with contextlib.suppress(FileNotFoundError, ProcessLookupError, PermissionError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


def _holders(inodes: set[str]) -> set[int]:
    """The processes that have one of the sockets `inodes` open (a /proc scan)."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    pids: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, PermissionError):
            for fd in os.listdir(f"/proc/{entry}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{entry}/fd/{fd}") in wanted:
                        pids.add(int(entry))
                        break
    return pids


def _descends_from(pid: int, ancestor: int) -> bool:
    """Whether process `pid` is `ancestor` or one of its descendants (PPid chain)."""
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            with open(f"/proc/{pid}/status") as status:
                ppid = next(line for line in status if line.startswith("PPid:"))
        except (OSError, StopIteration):
            return False
        pid = int(ppid.split()[1])
    return False


# -- a blocking probe connection --------------------------------------------------------------


class _Probe:
    """A throw-away blocking IRC connection used to check that a server works."""

    def __init__(self, port: int, deadline: float) -> None:
        self.deadline = deadline
        self.sock = socket.create_connection((HOST, port), timeout=self._left())
        self.buffer = b""
        self.seen: list[str] = []
        self.nick = "probe" + secrets.token_hex(3)

    def _left(self) -> float:
        return max(0.05, self.deadline - time.monotonic())

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def expect(self, predicate: Callable[[Message], bool], what: str) -> Message:
        while True:
            while b"\n" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\n", 1)
                line = raw.decode("utf-8", "replace").rstrip("\r")
                if not line.strip():
                    continue
                self.seen.append(line)
                message = Message.parse(line)
                if message.command == "PING":
                    self.send(f"PONG :{message.text}")
                elif predicate(message):
                    return message
            if time.monotonic() >= self.deadline:
                raise TimeoutError(f"probe: no {what}; got {self.seen[-10:]}")
            self.sock.settimeout(self._left())
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"probe: server closed while waiting for {what}")
            self.buffer += data

    def register(self) -> None:
        self.send(f"NICK {self.nick}")
        self.send("USER probe 0 * :start-up probe")
        self.expect(lambda m: m.command in {"376", "422"}, "end of MOTD after registration")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.send("QUIT :probe done")
        self.sock.close()

    def __enter__(self) -> _Probe:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# -- the process manager ------------------------------------------------------------------------


class ManagedServer:
    """One server process: config, ports, start/stop/kill/restart, log. Subclasses fill in
    the config, the command line and the readiness probe.

    Every process runs under `setpriv --pdeathsig KILL`: it dies with the thread that
    started it, so a test run that is killed leaves no server behind. Start servers from a
    thread that lives as long as they should (the main thread; the `a…` methods spawn in
    the event-loop thread and only wait in a worker thread)."""

    name = "server"
    start_timeout = 15.0
    start_attempts = 3
    unprivileged = False
    """Run as nobody/nogroup (its config and data then live in `rundir`, see below)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{self.name}.log"
        # Files the server process reads or writes itself. pytest's tmp dirs are 0700 root,
        # so an unprivileged server gets a directory of its own under /tmp, removed by close().
        if self.unprivileged:
            self.rundir = Path(tempfile.mkdtemp(prefix=f"deploybot-{self.name}-"))
            self.rundir.chmod(0o755)
            os.chown(self.rundir, *_unprivileged_ids())
        else:
            self.rundir = self.workdir
        self.startup_seconds: list[float] = []
        """How long each successful start took (spawn to ready), in seconds."""
        self._slot = _ProcessSlot()
        # Last resort when close() was forgotten: kill the process and remove rundir when this
        # object is garbage-collected or the interpreter exits (with a ResourceWarning).
        self._finalizer = weakref.finalize(
            self,
            _last_resort_cleanup,
            self._slot,
            self.name,
            self.rundir if self.unprivileged else None,
        )
        self._ports_fixed = False

    # hooks ----------------------------------------------------------------------------------

    def _choose_ports(self) -> None:
        """Pick new free ports (called before a start, until one start succeeded)."""

    def _listen_ports(self) -> list[int]:
        """The ports the process must own once it is up."""
        return []

    def _write_config(self) -> None:
        raise NotImplementedError

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _probe(self, deadline: float) -> None:
        """Block until the running server does its job (e.g. answers a registration)."""

    # state ----------------------------------------------------------------------------------

    @property
    def _proc(self) -> subprocess.Popen[bytes] | None:
        return self._slot.proc

    @_proc.setter
    def _proc(self, proc: subprocess.Popen[bytes] | None) -> None:
        self._slot.proc = proc

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the process we started is alive."""
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        """The end of this server's log file."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return f"({self.log_path} does not exist)"
        return "\n".join(text.splitlines()[-lines:])

    def debug_sections(self) -> list[tuple[str, str]]:
        """(title, text) pairs for a failing test's report: the log tail."""
        return [(f"{self.name} log (tail of {self.log_path})", self.log_tail())]

    def _error(self, cls: type[ServerError], what: str) -> ServerError:
        return cls(f"{self.name}: {what}\n--- {self.log_path} (tail):\n{self.log_tail()}")

    # operations -----------------------------------------------------------------------------

    def start(self, *, probe: bool = True) -> None:
        """Write the config, spawn the server and wait until it is ready: it owns its ports
        and (unless `probe=False`) answers a client. Until the first success, a port taken
        by someone else means new ports and another try; afterwards the ports stay (a
        restart comes back on the same ports)."""
        for attempt in range(1, self.start_attempts + 1):
            began = self._spawn()
            try:
                self._wait_ready(began, probe)
            except PortInUse:
                if attempt == self.start_attempts:
                    raise
                time.sleep(0.2 * attempt if self._ports_fixed else 0)
                continue
            return

    async def astart(self, *, probe: bool = True) -> None:
        """`start()` without blocking the event loop: spawns in the loop's thread, waits for
        readiness in a worker thread."""
        for attempt in range(1, self.start_attempts + 1):
            began = self._spawn()
            try:
                await asyncio.to_thread(self._wait_ready, began, probe)
            except PortInUse:
                if attempt == self.start_attempts:
                    raise
                await asyncio.sleep(0.2 * attempt if self._ports_fixed else 0)
                continue
            return

    def _spawn(self) -> float:
        if self.running:
            raise ServerError(f"{self.name} is already running (pid {self.pid})")
        if not self._ports_fixed:
            self._choose_ports()
        self._write_config()
        argv = ["setpriv", "--pdeathsig", "KILL"]
        if self.unprivileged:
            user, group = UNPRIVILEGED_USER
            argv += [f"--reuid={user}", f"--regid={group}", "--clear-groups"]
        argv += self._argv()
        with open(self.log_path, "ab") as log:
            log.write(f"=== {time.strftime('%H:%M:%S')} start: {' '.join(argv)}\n".encode())
            log.flush()
            began = time.monotonic()
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.rundir,
                start_new_session=True,
            )
        return began

    def _wait_ready(self, began: float, probe: bool) -> None:
        try:
            deadline = began + self.start_timeout
            self._wait_listening(deadline)
            try:
                if probe:
                    self._probe(deadline)
            except (OSError, TimeoutError) as exc:
                raise self._error(ServerError, f"not answering after start: {exc}") from exc
        except BaseException:
            self.kill()
            raise
        self._ports_fixed = True
        self.startup_seconds.append(time.monotonic() - began)

    def _wait_listening(self, deadline: float) -> None:
        """Until the server listens on each of its ports.  A listener on one of them that
        is not the server's is a squatter (`PortInUse`) when a process that is not the
        server nor one of its children holds it for `SQUATTER_GRACE` seconds.  Children
        count as the server: RabbitMQ's start script runs a short-lived Erlang VM that
        binds the distribution port to test it before the real VM starts (seen to fail a
        broker restart as "held by another process"); and a socket can be in the listener
        table yet gone from the server's fds by the time they are read."""
        assert self._proc is not None
        ports = self._listen_ports()
        foreign_since: dict[tuple[int, str], float] = {}
        while True:
            returncode = self._proc.poll()
            if returncode is not None:
                log = self.log_tail(200)
                cls = PortInUse if "in use" in log.rsplit("=== ", 1)[-1].lower() else ServerError
                raise self._error(cls, f"exited with status {returncode} while starting")
            pending = []
            now = time.monotonic()
            for port in ports:
                listeners = _listening_inodes(port)
                # our fds are read after the listeners: a socket bound in between is ours
                if listeners & _socket_inodes(self._proc.pid):
                    continue
                pid = self._proc.pid
                if listeners and not any(_descends_from(h, pid) for h in _holders(listeners)):
                    for inode in listeners:
                        seen = foreign_since.setdefault((port, inode), now)
                        if now - seen >= SQUATTER_GRACE and self._proc.poll() is None:
                            raise self._error(PortInUse, f"port {port} is held by another process")
                pending.append(port)
            if not pending:
                return
            if time.monotonic() >= deadline:
                raise self._error(ServerError, f"not listening on {pending} in time")
            time.sleep(0.01)

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the process group (SIGTERM, SIGKILL after `timeout`) and reap it."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                proc.wait()
        self._signal_group(signal.SIGKILL)  # stragglers of the group, if any
        self._proc = None

    def kill(self) -> None:
        """SIGKILL the process group at once (a crash, as far as clients can tell) and reap."""
        proc = self._proc
        if proc is None:
            return
        self._signal_group(signal.SIGKILL)
        proc.wait()
        self._proc = None

    def restart(self, *, probe: bool = True) -> None:
        """Stop (if running) and start again on the same ports."""
        self.stop()
        self.start(probe=probe)

    def close(self) -> None:
        """Stop the server for good and remove its private /tmp directory, if any (files
        worth keeping are copied to `workdir` first)."""
        self.stop()
        if self.unprivileged:
            self._keep_files()
            self._finalizer()

    def _keep_files(self) -> None:
        """Copy what is worth keeping from `rundir` to `workdir` before close() removes it."""

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self._proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)

    async def astop(self) -> None:
        """`stop()` in a worker thread."""
        await asyncio.to_thread(self.stop)

    async def akill(self) -> None:
        """`kill()` in a worker thread."""
        await asyncio.to_thread(self.kill)

    async def arestart(self, *, probe: bool = True) -> None:
        """`restart()` without blocking the event loop."""
        await self.astop()
        await self.astart(probe=probe)

    def __enter__(self) -> ManagedServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"<{type(self).__name__} {state} {self.workdir}>"


class _ProcessSlot:
    """The running process of a server, shared with its last-resort finalizer."""

    proc: subprocess.Popen[bytes] | None = None


def _last_resort_cleanup(slot: _ProcessSlot, name: str, rundir: Path | None) -> None:
    proc = slot.proc
    if proc is not None and proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        slot.proc = None
        warnings.warn(
            f"{name} server (pid {proc.pid}) was still running when it was dropped; "
            "call stop() or close()",
            ResourceWarning,
            stacklevel=1,
        )
    if rundir is not None:
        shutil.rmtree(rundir, ignore_errors=True)


def _unprivileged_ids() -> tuple[int, int]:
    user, group = UNPRIVILEGED_USER
    return pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid


# -- inspircd -------------------------------------------------------------------------------------

INSPIRCD_CONF = Template("""\
# Written by tests/ircd/servers.py for one test run.
<server name="$server_name" description="deploybot test ircd" network="DeploybotTest" id="$sid">
<admin name="deploybot tests" nick="tests" email="tests@localhost">

<bind address="$host" port="$stock_port" type="clients">
<bind address="$host" port="$relaxed_port" type="clients">

# STOCK class: the flood control of a default install (threshold 10, commandrate 1000, fake
# lag on, inspircd's built-in recvq/sendq). A client bursting long lines is killed (RecvQ
# exceeded); a bot must pace itself here. Only the connection limits are raised.
<connect name="stock" allow="*" port="$stock_port" threshold="10" commandrate="1000"
         fakelag="yes" timeout="60" pingfreq="120" localmax="10000" globalmax="10000"
         maxconnwarn="no" useident="no" resolvehostnames="no">

# RELAXED class: for test clients and load: no fake lag, huge penalty budget, big queues.
<connect name="relaxed" allow="*" port="$relaxed_port" threshold="1000000"
         commandrate="1000000000" fakelag="no" recvq="1048576" softsendq="16777216"
         hardsendq="16777216" maxchans="1000" timeout="60" pingfreq="120" localmax="10000"
         globalmax="10000" maxconnwarn="no" useident="no" resolvehostnames="no">

<dns server="127.0.0.1" timeout="1">
<files motd="$motd">
<options prefixquit="Quit: ">
<performance softlimit="20000" somaxconn="128" netbuffersize="10240">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="$log" flush="1">

<module name="cap">
<module name="ircv3">
<module name="ircv3_accounttag">
<module name="ircv3_capnotify">
<module name="ircv3_echomessage">
<module name="namesx">
<module name="uhnames">
<module name="services_account">
<module name="spanningtree">
$services
""")

INSPIRCD_SERVICES_CONF = Template("""\
# Services (atheme) link in on the server port; SASL goes to them.
<bind address="$host" port="$servers_port" type="servers">
<link name="$services_name" ipaddr="$host" port="$servers_port" allowmask="$host"
      sendpass="$link_password" recvpass="$link_password" timeout="10">
<uline server="$services_name" silent="yes">
<module name="sasl">
<sasl target="$services_name">
""")


class InspircdServer(ManagedServer):
    """inspircd 3 in the foreground, as root, with a stock and a relaxed client port, and
    (with `services_name`) a server port and link block for atheme."""

    name = "inspircd"

    def __init__(
        self,
        workdir: Path,
        *,
        services_name: str | None = None,
        server_name: str = "irc.test",
    ) -> None:
        super().__init__(workdir)
        self.host = HOST
        self.server_name = server_name
        self.services_name = services_name
        self.link_password = secrets.token_hex(8)
        self.stock_port = 0
        self.relaxed_port = 0
        self.servers_port = 0
        self.config_path = self.workdir / "inspircd.conf"

    def _choose_ports(self) -> None:
        self.stock_port = free_port()
        self.relaxed_port = free_port()
        while self.relaxed_port == self.stock_port:
            self.relaxed_port = free_port()
        self.servers_port = 0
        if self.services_name:
            while self.servers_port in {0, self.stock_port, self.relaxed_port}:
                self.servers_port = free_port()

    def _listen_ports(self) -> list[int]:
        return [p for p in (self.stock_port, self.relaxed_port, self.servers_port) if p]

    def _write_config(self) -> None:
        motd = self.workdir / "motd.txt"
        motd.write_text("deploybot test server\n")
        services = ""
        if self.services_name:
            services = INSPIRCD_SERVICES_CONF.substitute(
                host=self.host,
                servers_port=self.servers_port,
                services_name=self.services_name,
                link_password=self.link_password,
            )
        self.config_path.write_text(
            INSPIRCD_CONF.substitute(
                host=self.host,
                server_name=self.server_name,
                sid="1AB",
                stock_port=self.stock_port,
                relaxed_port=self.relaxed_port,
                motd=motd,
                log=self.workdir / "inspircd-internal.log",
                services=services,
            )
        )

    def _argv(self) -> list[str]:
        return ["inspircd", "--nofork", "--nopid", "--runasroot", f"--config={self.config_path}"]

    def _probe(self, deadline: float) -> None:
        with _Probe(self.relaxed_port, deadline) as probe:
            probe.register()


# -- atheme ---------------------------------------------------------------------------------------

ATHEME_CONF = Template("""\
/* Written by tests/ircd/servers.py for one test run. */
loadmodule "modules/protocol/inspircd";
loadmodule "modules/backend/opensex";
loadmodule "modules/crypto/pbkdf2v2";
loadmodule "modules/nickserv/main";
loadmodule "modules/nickserv/identify";
loadmodule "modules/nickserv/register";
loadmodule "modules/nickserv/info";
loadmodule "modules/nickserv/logout";
loadmodule "modules/nickserv/help";
loadmodule "modules/saslserv/main";
loadmodule "modules/saslserv/plain";

serverinfo {
	name = "$services_name";
	desc = "deploybot test services";
	numeric = "00A";
	recontime = 1;
	netname = "DeploybotTest";
	hidehostsuffix = "users.test";
	adminname = "deploybot tests";
	adminemail = "tests@localhost";
	registeremail = "noreply@localhost";
	mta = "/bin/true";
	loglevel = { error; info; admin; network; };
	/* many test clients may share one account; no per-email account limit */
	maxlogins = 1000;
	maxusers = 0;
	mdlimit = 30;
	emaillimit = 1000;
	emailtime = 300;
	auth = none;
	casemapping = rfc1459;
};

uplink "$uplink_name" {
	host = "$host";
	port = $port;
	password = "$password";
};

nickserv {
	nick = "NickServ";
	user = "NickServ";
	host = "$services_name";
	real = "Nickname Services";
	maxnicks = 5;
	expire = 0;
};

saslserv {
	nick = "SaslServ";
	user = "SaslServ";
	host = "$services_name";
	real = "SASL Authentication Agent";
};

/* flood_msgs = 0 and no ratelimit_* turn off services flood control and the REGISTER rate
   limit: tests register many accounts in a few seconds. */
general {
	flood_msgs = 0;
	flood_time = 10;
	commit_interval = 5;
	default_clone_allowed = 10000;
	default_clone_warn = 10000;
	uplink_sendq_limit = 4194304;
	language = "en";
	immune_level = immune;
};
""")


class AthemeServices(ManagedServer):
    """atheme-services 7.2 linked to `uplink` (an `InspircdServer` with `services_name`),
    run as nobody (atheme refuses root). Ready once NickServ answers on the uplink."""

    name = "atheme"
    unprivileged = True  # its config, database, pid file and own log live in rundir

    def __init__(self, workdir: Path, uplink: InspircdServer) -> None:
        if not uplink.services_name:
            raise ValueError("the uplink inspircd needs services_name (a link block)")
        super().__init__(workdir)
        self.uplink = uplink
        self.services_name = uplink.services_name
        self.config_path = self.rundir / "atheme.conf"

    def _write_config(self) -> None:
        text = ATHEME_CONF.substitute(
            services_name=self.services_name,
            uplink_name=self.uplink.server_name,
            host=self.uplink.host,
            port=self.uplink.servers_port,
            password=self.uplink.link_password,
        )
        self.config_path.write_text(text)
        (self.workdir / "atheme.conf").write_text(text)

    def _argv(self) -> list[str]:
        # -p is not optional: without a writable pid file atheme exits at once
        return [
            "atheme-services",
            "-n",
            "-c",
            str(self.config_path),
            "-D",
            str(self.rundir),
            "-p",
            str(self.rundir / "atheme.pid"),
            "-l",
            str(self.rundir / "atheme-internal.log"),
        ]

    def _probe(self, deadline: float) -> None:
        wait_services_linked(self.uplink, deadline, alive=lambda: self.running)

    def _keep_files(self) -> None:
        internal = self.rundir / "atheme-internal.log"
        if internal.exists():
            shutil.copyfile(internal, self.workdir / "atheme-internal.log")


def wait_services_linked(
    ircd: InspircdServer, deadline: float, *, alive: Callable[[], bool] = lambda: True
) -> None:
    """Block until NickServ and SaslServ are on `ircd` and NickServ answers a message.

    Raises TimeoutError at `deadline`, ServerError when `alive()` turns false."""
    with _Probe(ircd.relaxed_port, deadline) as probe:
        probe.register()
        while True:
            present = []
            for service in ("NickServ", "SaslServ"):
                probe.send(f"WHOIS {service}")
                reply = probe.expect(lambda m: m.command in {"311", "401"}, f"WHOIS {service}")
                probe.expect(lambda m: m.command in {"318"}, "end of WHOIS")
                present.append(reply.command == "311")
            if all(present):
                break
            if not alive():
                raise ServerError("services exited before linking")
            if time.monotonic() >= deadline:
                raise TimeoutError("services did not link in time")
            time.sleep(0.05)
        probe.send("PRIVMSG NickServ :HELP")
        probe.expect(
            lambda m: m.command == "NOTICE" and m.nick == "NickServ", "a NOTICE from NickServ"
        )


class InspircdWithServices:
    """inspircd and atheme linked to it: NickServ accounts, SASL PLAIN, `account-tag`.

    `restart()`/`kill()`/`start()`/`stop()` act on inspircd only: atheme keeps running and
    relinks (within ~1 s, `recontime = 1`), so accounts registered earlier survive;
    `start()` and `restart()` return once the services are linked again."""

    def __init__(self, workdir: Path) -> None:
        self.ircd = InspircdServer(Path(workdir) / "inspircd", services_name=SERVICES_NAME)
        self.services = AthemeServices(Path(workdir) / "atheme", uplink=self.ircd)
        self.host = HOST
        self._names = itertools.count(1)
        self._linked_pid: int | None = None

    @property
    def stock_port(self) -> int:
        return self.ircd.stock_port

    @property
    def relaxed_port(self) -> int:
        return self.ircd.relaxed_port

    @property
    def servers_port(self) -> int:
        return self.ircd.servers_port

    def unique_name(self, prefix: str = "user") -> str:
        """`prefix` plus a number never handed out before by this network: a fresh nick,
        account or channel name (nicks stay within inspircd's 30 characters)."""
        return f"{prefix[:22]}{next(self._names)}"

    def start(self) -> None:
        """Start whatever is not running (inspircd, then atheme) and wait for the link.
        Returns at once when both run and the link was seen since inspircd last started."""
        if not self.ircd.running:
            # no registration probe: the link check below registers a client anyway, and
            # each inspircd registration takes ~1 s
            self.ircd.start(probe=False)
        if not self.services.running:
            self.services.start()  # ready means linked
            self._linked_pid = self.ircd.pid
        elif self._linked_pid != self.ircd.pid:
            self.wait_linked()

    def wait_linked(self, timeout: float = 15.0) -> None:
        """Block until atheme is linked to inspircd and NickServ answers."""
        try:
            wait_services_linked(
                self.ircd, time.monotonic() + timeout, alive=lambda: self.services.running
            )
        except (OSError, TimeoutError, ServerError) as exc:
            raise ServerError(
                f"services not linked: {exc}\n--- inspircd log:\n{self.ircd.log_tail()}"
                f"\n--- atheme log:\n{self.services.log_tail()}"
            ) from exc
        self._linked_pid = self.ircd.pid

    def restart(self) -> None:
        """Restart inspircd on the same ports; return once the services are linked again."""
        self.ircd.stop()
        self.start()

    def kill(self) -> None:
        """SIGKILL inspircd (atheme keeps retrying the link until it is back)."""
        self.ircd.kill()

    def stop(self) -> None:
        """Stop inspircd (atheme keeps retrying the link until it is back)."""
        self.ircd.stop()

    def close(self) -> None:
        """Stop both, atheme first, and remove atheme's /tmp directory."""
        try:
            self.services.close()
        finally:
            self.ircd.close()

    async def astart(self) -> None:
        """`start()` without blocking the event loop."""
        if not self.ircd.running:
            await self.ircd.astart(probe=False)
        if not self.services.running:
            await self.services.astart()
            self._linked_pid = self.ircd.pid
        elif self._linked_pid != self.ircd.pid:
            await asyncio.to_thread(self.wait_linked)

    async def arestart(self) -> None:
        """`restart()` without blocking the event loop."""
        await self.ircd.astop()
        await self.astart()

    async def akill(self) -> None:
        await asyncio.to_thread(self.kill)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)

    def debug_sections(self) -> list[tuple[str, str]]:
        """(title, text) pairs for a failing test's report: both log tails."""
        return self.ircd.debug_sections() + self.services.debug_sections()

    def __repr__(self) -> str:
        return f"<InspircdWithServices {self.ircd!r} {self.services!r}>"


# -- ngircd ---------------------------------------------------------------------------------------

NGIRCD_CONF = Template("""\
# Written by tests/ircd/servers.py for one test run.
[Global]
Name = $server_name
Info = deploybot test ngircd
AdminInfo1 = deploybot tests
AdminInfo2 = localhost
AdminEMail = tests@localhost
Listen = $host
Ports = $port
ServerUID = $user
ServerGID = $group
MotdPhrase = deploybot test server

[Limits]
# Defaults are 5 connections per IP, 9-character nicks and 10 channels per user.
MaxConnections = 0
MaxConnectionsIP = 0
MaxNickLength = 30
MaxJoins = 0
$penalty

[Options]
DNS = no
Ident = no
PAM = no
""")


class NgircdServer(ManagedServer):
    """ngircd 26 in the foreground (`-n`). `relaxed=True` sets `MaxPenaltyTime = 0` (no
    flood penalty, for load); `False` keeps the stock penalty (every ~13th fast command
    held back ~1 s).

    Started as root, ngircd would switch to ServerUID/ServerGID itself, and that switch
    clears the parent-death signal; so setpriv starts it as nobody/nogroup right away (the
    config, in `rundir`, is readable by nobody; ServerUID/GID stay set and are no-ops)."""

    name = "ngircd"
    unprivileged = True

    def __init__(
        self, workdir: Path, *, relaxed: bool = True, server_name: str = "irc.ngircd.test"
    ) -> None:
        super().__init__(workdir)
        self.host = HOST
        self.relaxed = relaxed
        self.server_name = server_name
        self.port = 0
        self.config_path = self.rundir / "ngircd.conf"

    def _choose_ports(self) -> None:
        self.port = free_port()

    def _listen_ports(self) -> list[int]:
        return [self.port]

    def _write_config(self) -> None:
        user, group = UNPRIVILEGED_USER
        text = NGIRCD_CONF.substitute(
            server_name=self.server_name,
            host=self.host,
            port=self.port,
            user=user,
            group=group,
            penalty="MaxPenaltyTime = 0" if self.relaxed else "# stock MaxPenaltyTime",
        )
        self.config_path.write_text(text)
        self.config_path.chmod(0o644)
        (self.workdir / "ngircd.conf").write_text(text)

    def _argv(self) -> list[str]:
        return ["ngircd", "-n", "-f", str(self.config_path)]

    def _probe(self, deadline: float) -> None:
        with _Probe(self.port, deadline) as probe:
            probe.register()

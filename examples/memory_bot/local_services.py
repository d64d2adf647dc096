"""Throwaway PostgreSQL and Redis servers on loopback, for the scale check and the tests.

    with LocalPostgres() as pg, LocalRedis() as redis:
        pg.url("memory")          # postgresql://memory_bot:<password>@127.0.0.1:<port>/memory
        redis.port, redis.password

Each server gets a fresh temporary directory, a free port on 127.0.0.1 and a random password, and is
stopped (and its directory removed) on exit. PostgreSQL refuses to run as root: when we are root,
initdb and postgres run as the ``postgres`` user (Debian's ``postgresql`` package creates it). A missing
``redis-server`` is installed with ``apt-get install redis-server`` when we are root on Debian/Ubuntu.
"""
import glob
import logging
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, List, Optional, Tuple, Type

from .processes import LOOPBACK, ServerError, pick_free_port, read_tail, spawn_logged, stop_processes

logger = logging.getLogger(__name__)

PG_BIN_ENV = "MEMORY_BOT_PG_BIN"
PG_USER = "memory_bot"
PG_DATABASES = ("memory", "rasa")
UNPRIVILEGED_USER = "postgres"
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


def postgres_bin_dir() -> Path:
    """Where initdb and postgres are: $MEMORY_BOT_PG_BIN, PATH, or Debian's /usr/lib/postgresql/<newest>/bin."""
    if os.environ.get(PG_BIN_ENV):
        return Path(os.environ[PG_BIN_ENV])
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if versions:
        return Path(versions[-1]).parent
    raise ServerError("PostgreSQL's initdb was not found; install it (Debian: apt-get install postgresql) or set "
                      f"{PG_BIN_ENV} to the directory holding initdb and postgres.")


def ensure_redis_server() -> str:
    """The redis-server binary; installed with apt-get when missing and we are root, else ServerError."""
    found = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ServerError("redis-server was not found; install it (Debian: sudo apt-get install redis-server).")
    logger.info("redis-server is missing: apt-get install -y redis-server")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "redis-server"]):
        done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if done.returncode != 0:
            raise ServerError(f"`{' '.join(cmd)}` failed ({done.returncode}):\n{done.stdout[-2000:]}")
    found = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(found):
        raise ServerError("apt-get installed redis-server but no redis-server binary was found.")
    return found


class _LocalService:
    """What both servers share: a port, a password, a temporary directory and one logged child process."""

    #: what the log and error messages call the process
    process_name = ""
    stop_signal = signal.SIGTERM

    def __init__(self, port: Optional[int] = None) -> None:
        self.host = LOOPBACK
        self.port = port or pick_free_port()
        self.password = secrets.token_hex(16)  # hex: safe in URLs and on command lines
        self.dir: Optional[Path] = None
        self._process: Optional[subprocess.Popen] = None
        self._log: Optional[Path] = None

    def _spawn(self, cmd: List[str], log: Path, **popen_kw) -> None:
        self._log = log
        self._process = spawn_logged(cmd, log, stdin=subprocess.DEVNULL, **popen_kw)

    def _wait_ready(self, what: str, probe: Callable[[], object], errors: Tuple[Type[BaseException], ...]) -> None:
        """Poll ``probe`` until it returns true; ServerError when the process exits or READY_TIMEOUT_S passes."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            process = self._process
            if process is not None and process.poll() is not None:
                raise ServerError(f"{self.process_name} exited with code {process.returncode}; its log ends with:\n"
                                  f"{read_tail(self._log)}")
            try:
                if probe():
                    return
            except errors:
                if time.monotonic() > deadline:
                    raise ServerError(f"{what} not ready after {READY_TIMEOUT_S:.0f} s:\n"
                                      f"{read_tail(self._log)}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop_processes([(self.process_name, process)], self.stop_signal, STOP_TIMEOUT_S)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class LocalPostgres(_LocalService):
    """A PostgreSQL server in a temporary directory, on 127.0.0.1, with role ``memory_bot`` and the
    databases ``memory`` and ``rasa`` (password authentication over TCP).

    Args:
        durable: False turns off fsync and synchronous commit (tests: faster, nothing survives a crash).
    """

    process_name = "postgres"
    stop_signal = signal.SIGINT  # PostgreSQL's "fast" shutdown

    def __init__(self, durable: bool = True, port: Optional[int] = None) -> None:
        super().__init__(port)
        self.durable = durable
        self.user = PG_USER

    @property
    def socket_dir(self) -> Path:
        return Path(self.dir) / "socket"

    def url(self, database: str = "memory") -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def _run_as(self) -> dict:
        """Popen arguments that drop root to the postgres user (nothing when we are not root)."""
        if os.geteuid() != 0:
            return {}
        try:
            entry = pwd.getpwnam(UNPRIVILEGED_USER)
        except KeyError:
            raise ServerError(f"PostgreSQL does not run as root and there is no {UNPRIVILEGED_USER!r} user; "
                              f"create one (useradd --system {UNPRIVILEGED_USER}) or run as another user.") from None
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def start(self) -> "LocalPostgres":
        import psycopg2

        bin_dir = postgres_bin_dir()
        run_as = self._run_as()
        self.dir = Path(tempfile.mkdtemp(prefix="memory-bot-pg-"))
        try:
            if run_as:
                os.chown(self.dir, run_as["user"], run_as["group"])
            data, socket_dir = self.dir / "data", self.dir / "socket"
            pwfile = self.dir / "pw"
            pwfile.write_text(secrets.token_urlsafe(24) + "\n")  # the superuser's; nobody uses it
            socket_dir.mkdir()
            if run_as:
                for path in (pwfile, socket_dir):
                    os.chown(path, run_as["user"], run_as["group"])
            done = subprocess.run(
                [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8", "--locale=C",
                 "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "--no-sync"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=self.dir, **run_as)
            if done.returncode != 0:
                raise ServerError(f"initdb failed ({done.returncode}):\n{done.stdout[-3000:]}")
            options = ["-c", "listen_addresses=" + self.host, "-c", "max_connections=200"]
            if not self.durable:
                options += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
            self._spawn([str(bin_dir / "postgres"), "-D", str(data), "-p", str(self.port),
                         "-k", str(socket_dir), *options], self.dir / "postgres.log", cwd=self.dir, **run_as)
            self._wait_ready("PostgreSQL", lambda: self._admin(socket_dir).close() or True,
                             (psycopg2.OperationalError,))
            self._bootstrap(socket_dir)
        except BaseException:
            self.stop()
            raise
        return self

    def admin(self, database: str = "postgres"):
        """A superuser connection over the Unix socket (autocommit), e.g. to create a test database."""
        return self._admin(self.socket_dir, database)

    def create_database(self, name: str) -> str:
        """Create database ``name`` owned by the ``memory_bot`` role; return its URL."""
        from psycopg2 import sql

        conn = self.admin()
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name),
                                                                            sql.Identifier(self.user)))
        finally:
            conn.close()
        return self.url(name)

    def _admin(self, socket_dir: Path, database: str = "postgres"):
        import psycopg2

        conn = psycopg2.connect(host=str(socket_dir), port=self.port, user="postgres", dbname=database,
                                connect_timeout=5)
        conn.autocommit = True
        return conn

    def _bootstrap(self, socket_dir: Path) -> None:
        from psycopg2 import sql

        conn = self._admin(socket_dir)
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(self.user)),
                               (self.password,))
                for database in PG_DATABASES:
                    cursor.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(database), sql.Identifier(self.user)))
        finally:
            conn.close()


class LocalRedis(_LocalService):
    """A redis-server on 127.0.0.1 with a random password, no persistence, in a temporary directory."""

    process_name = "redis-server"

    def start(self) -> "LocalRedis":
        import redis

        binary = ensure_redis_server()
        self.dir = Path(tempfile.mkdtemp(prefix="memory-bot-redis-"))
        try:
            config = self.dir / "redis.conf"  # the password goes in a file, not on the command line
            config.write_text(f"bind {self.host}\nport {self.port}\nprotected-mode yes\nsave \"\"\n"
                              f"appendonly no\ndir {self.dir}\ndaemonize no\nrequirepass {self.password}\n")
            config.chmod(0o600)
            self._spawn([binary, str(config)], self.dir / "redis.log", cwd=self.dir)
            self._wait_ready("Redis", lambda: self.client().ping(), (redis.exceptions.RedisError,))
        except BaseException:
            self.stop()
            raise
        return self

    def client(self):
        import redis

        return redis.Redis(host=self.host, port=self.port, password=self.password, socket_timeout=5)

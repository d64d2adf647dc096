"""Train memory_bot and run its Rasa server and action server on loopback.

Shared by ``demo.py`` and the end-to-end test: ports are checked before
starting, readiness is polled with a deadline, and ``stop`` always takes both
servers down (process groups, SIGTERM then SIGKILL).
"""
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from .actions import settings

logger = logging.getLogger(__name__)

BOT_DIR = Path(__file__).resolve().parent
LOOPBACK = "127.0.0.1"
DEFAULT_RASA_PORT = 5005
DEFAULT_ACTION_PORT = 5055
# Rasa imports TensorFlow and loads the model before it listens: allow minutes on 2 cores.
STARTUP_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 20.0
HTTP_TIMEOUT_S = 30.0
POLL_INTERVAL_S = 0.5
LOG_TAIL_CHARS = 3000


class ServerError(RuntimeError):
    """A server could not start, stopped early, or answered badly."""


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the servers do: connections of a previous run in TIME_WAIT must not count as taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def check_port_free(host: str, port: int, what: str, flag: str) -> None:
    """Raise ServerError naming the port and the flag to change when ``port`` is taken."""
    if not 0 < port < 65536:
        raise ServerError(f"{what} port {port} is invalid; pass {flag} with a number in 1..65535.")
    if not port_is_free(host, port):
        raise ServerError(
            f"{what} port {port} on {host} is already in use (another Rasa or action server?). "
            f"Stop that process or pass {flag} with a free port."
        )


def pick_free_port(host: str = LOOPBACK) -> int:
    """A port the OS reports free right now (used by tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def latest_model(models_dir: Path) -> Optional[Path]:
    models = sorted(models_dir.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    return models[-1] if models else None


def train(bot_dir: Path = BOT_DIR, out_dir: Optional[Path] = None, log_path: Optional[Path] = None,
          fixed_name: Optional[str] = None) -> Path:
    """Run plain ``rasa train`` in ``bot_dir``; Rasa restores unchanged components from its cache.

    Args:
        fixed_name: overwrite ``<out_dir>/<fixed_name>.tar.gz`` instead of adding a dated archive.

    Returns:
        The newest model archive in ``out_dir`` (default ``bot_dir/models``).
    """
    out_dir = Path(out_dir or bot_dir / "models")
    cmd = [sys.executable, "-m", "rasa", "train", "--out", str(out_dir)]
    if fixed_name:
        cmd += ["--fixed-model-name", fixed_name]
    logger.info("Training: %s (in %s)", " ".join(cmd), bot_dir)
    log = open(log_path, "w") if log_path else subprocess.DEVNULL
    try:
        done = subprocess.run(cmd, cwd=bot_dir, stdout=log, stderr=subprocess.STDOUT, env=child_env({}))
    finally:
        if log_path:
            log.close()
    model = latest_model(out_dir)
    if done.returncode != 0 or model is None:
        tail = read_tail(log_path) if log_path else "(no log kept)"
        raise ServerError(f"`rasa train` in {bot_dir} failed with exit code {done.returncode}:\n{tail}")
    return model


def child_env(extra: Dict[str, str]) -> Dict[str, str]:
    env = dict(os.environ)
    # Quiet TensorFlow's startup banner; keep child output in its log file only.
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(extra)
    return env


def read_tail(path: Optional[Path]) -> str:
    if path is None or not path.exists():
        return "(no log)"
    return path.read_text(errors="replace")[-LOG_TAIL_CHARS:]


def http_json(method: str, url: str, body: Optional[Dict[str, Any]] = None, timeout: float = HTTP_TIMEOUT_S) -> Any:
    """Send one JSON request and decode the JSON answer; raise ServerError on HTTP errors."""
    data = json.dumps(body).encode("utf-8") if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read().decode("utf-8") or "null")
    except urllib.error.HTTPError as e:
        raise ServerError(f"{method} {url} answered HTTP {e.code}: {e.read()[:500]!r}") from e


@dataclass
class BotServers:
    """The Rasa server and the action server of one bot, as child processes.

    Attributes:
        model: trained model archive to serve.
        work_dir: where endpoints.yml, the logs and (by default) the memory db go.
        rasa_port / action_port: loopback ports; checked free before starting.
        db_path: SQLite memory file for the action server.
        env: extra environment for the action server (e.g. MEMORY_BOT_MODEL).
    """

    model: Path
    work_dir: Path
    rasa_port: int = DEFAULT_RASA_PORT
    action_port: int = DEFAULT_ACTION_PORT
    db_path: Optional[Path] = None
    env: Dict[str, str] = field(default_factory=dict)
    bot_dir: Path = BOT_DIR
    host: str = LOOPBACK
    startup_timeout_s: float = STARTUP_TIMEOUT_S
    processes: List[Tuple[str, subprocess.Popen]] = field(default_factory=list)

    @property
    def rasa_url(self) -> str:
        return f"http://{self.host}:{self.rasa_port}"

    @property
    def action_url(self) -> str:
        return f"http://{self.host}:{self.action_port}"

    @property
    def memory_db(self) -> Path:
        return Path(self.db_path or self.work_dir / "memory.db")

    def log_path(self, name: str) -> Path:
        return self.work_dir / f"{name}.log"

    def start(self) -> "BotServers":
        """Start both servers and wait until they answer; stop both on any failure."""
        check_port_free(self.host, self.rasa_port, "Rasa server", "--rasa-port")
        check_port_free(self.host, self.action_port, "Action server", "--action-port")
        if self.rasa_port == self.action_port:
            raise ServerError(f"Rasa and action server both got port {self.rasa_port}; give them different ports.")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        endpoints = self.work_dir / "endpoints.yml"
        endpoints.write_text(f'action_endpoint:\n  url: "{self.action_url}/webhook"\n')
        try:
            # The action server imports the `actions` package from the bot directory.
            self._spawn("actions", [sys.executable, "-m", "rasa_sdk", "--actions", "actions",
                                    "--port", str(self.action_port)], cwd=self.bot_dir,
                        env={"SANIC_HOST": self.host, settings.DB_ENV: str(self.memory_db), **self.env})
            self._spawn("rasa", [sys.executable, "-m", "rasa", "run", "--enable-api", "--interface", self.host,
                                 "--port", str(self.rasa_port), "--model", str(self.model),
                                 "--endpoints", str(endpoints),
                                 "--credentials", str(self.bot_dir / "credentials.yml")],
                        cwd=self.work_dir, env={})
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, name: str, cmd: List[str], cwd: Path, env: Dict[str, str]) -> None:
        logger.info("Starting %s: %s", name, " ".join(cmd))
        with open(self.log_path(name), "w") as log:
            # A new session: Ctrl-C reaches only us, and stop() can signal the whole group.
            process = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                       env=child_env(env), start_new_session=True)
        self.processes.append((name, process))

    def wait_ready(self) -> None:
        """Poll the action server's /health and Rasa's /status until both answer, or raise."""
        deadline = time.monotonic() + self.startup_timeout_s
        checks = {"actions": f"{self.action_url}/health", "rasa": f"{self.rasa_url}/status"}
        while checks:
            for name, process in self.processes:
                if process.poll() is not None:
                    raise ServerError(f"The {name} server exited with code {process.returncode} while starting; "
                                      f"its log ({self.log_path(name)}) ends with:\n{read_tail(self.log_path(name))}")
            for name, url in list(checks.items()):
                try:
                    http_json("GET", url, timeout=2)
                    del checks[name]
                except (OSError, ServerError):
                    pass
            if checks and time.monotonic() > deadline:
                names = ", ".join(checks)
                raise ServerError(f"{names} not ready after {self.startup_timeout_s:.0f} s; see the logs in "
                                  f"{self.work_dir}.")
            if checks:
                time.sleep(POLL_INTERVAL_S)

    def stop(self) -> None:
        """Stop both servers (SIGTERM, then SIGKILL after a grace period); safe to call twice."""
        for name, process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for name, process in self.processes:
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                logger.warning("The %s server ignored SIGTERM; killing it.", name)
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=STOP_TIMEOUT_S)
        self.processes.clear()

    def __enter__(self) -> "BotServers":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def say(self, sender: str, text: str) -> List[str]:
        """POST one message to the REST channel; return the bot's text replies."""
        replies = http_json("POST", f"{self.rasa_url}/webhooks/rest/webhook", {"sender": sender, "message": text})
        return [r.get("text", "") for r in replies or [] if r.get("text")]

    def route(self, sender: str) -> Tuple[str, float]:
        """The intent (route) and confidence of the sender's latest message, from their tracker."""
        url = f"{self.rasa_url}/conversations/{urllib.parse.quote(sender, safe='')}/tracker?include_events=NONE"
        intent = (http_json("GET", url).get("latest_message") or {}).get("intent") or {}
        return str(intent.get("name")), float(intent.get("confidence") or 0.0)

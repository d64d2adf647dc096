"""memory_bot's Rasa server and action server on loopback, as child processes (``BotServers``).

Shared by ``demo.py``, the scale check and the end-to-end tests: ports are checked before starting,
readiness is polled with a deadline, and ``stop`` always takes both servers down (process groups,
SIGTERM then SIGKILL).

The servers run secured as the README describes: only the ``auth_rest`` channel
(users are the ``sub`` of a token signed with a per-run secret), the action
server only answers calls with a per-run token, and Rasa's HTTP API needs a
per-run auth token. Everything binds 127.0.0.1.
"""
import json
import logging
import secrets
import signal
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from . import auth_channel
from .actions import server_guard, settings
# Re-exported: demo.py, the scale check and the tests import these from here.
from .http_client import http_json, http_request
from .processes import (LOOPBACK, ServerError, check_port_free, child_env, pick_free_port, read_tail, spawn_logged,
                        stop_processes)
from .training import BOT_DIR, bot_pythonpath, train

__all__ = ["BOT_DIR", "DEFAULT_ACTION_PORT", "DEFAULT_RASA_PORT", "LOOPBACK", "BotServers", "ServerError",
           "check_port_free", "http_json", "http_request", "new_secret", "pick_free_port", "read_tail", "train"]

logger = logging.getLogger(__name__)

DEFAULT_RASA_PORT = 5005
DEFAULT_ACTION_PORT = 5055
# Rasa imports TensorFlow and loads the model before it listens: allow minutes on 2 cores.
STARTUP_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 20.0
POLL_INTERVAL_S = 0.5


def new_secret() -> str:
    return secrets.token_hex(32)  # hex: never starts with "-", which command lines would read as an option


@dataclass
class BotServers:
    """The Rasa server and the action server of one bot, as child processes.

    Attributes:
        model: trained model archive to serve.
        work_dir: where endpoints.yml, the logs and (by default) the memory db go.
        rasa_port / action_port: loopback ports; checked free before starting.
        db_path: SQLite memory file for the action server (``env`` may set MEMORY_BOT_DB to a URL instead).
        env: extra environment for the action server (e.g. MEMORY_BOT_MODEL).
        endpoints: an endpoints file to run Rasa with (e.g. endpoints.production.yml, configured by
            ``rasa_env``); None writes this run's own (action server + SQLite tracker store).
        rasa_env: extra environment for the Rasa server (what ``endpoints`` reads).
        jwt_secret: signs the users' tokens (``MEMORY_BOT_JWT_SECRET``); random per instance.
        action_token: what Rasa must send the action server (``MEMORY_BOT_ACTION_TOKEN``); random.
        api_token: Rasa's ``--auth-token`` for its HTTP API (tracker, parse); random.
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
    jwt_secret: str = field(default_factory=new_secret, repr=False)
    action_token: str = field(default_factory=new_secret, repr=False)
    api_token: str = field(default_factory=new_secret, repr=False)
    tracker_db: Optional[Path] = None
    endpoints: Optional[Path] = None
    rasa_env: Dict[str, str] = field(default_factory=dict)
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

    @property
    def trackers_db(self) -> Path:
        return Path(self.tracker_db or self.work_dir / "trackers.db")

    def log_path(self, name: str) -> Path:
        return self.work_dir / f"{name}.log"

    def start(self, actions: bool = True, rasa: bool = True) -> "BotServers":
        """Start the servers and wait until they are ready; stop all on any failure.

        Args:
            actions / rasa: which servers to start (tests start one alone, e.g. to stop the
                action server in the middle of a conversation).
        """
        if actions:
            check_port_free(self.host, self.action_port, "Action server", "--action-port")
        if rasa:
            check_port_free(self.host, self.rasa_port, "Rasa server", "--rasa-port")
        if self.rasa_port == self.action_port:
            raise ServerError(f"Rasa and action server both got port {self.rasa_port}; give them different ports.")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        try:
            if actions:
                self.start_actions()
            if rasa:
                self.start_rasa()
            self.wait_ready(actions=actions, rasa=rasa)
        except BaseException:
            self.stop()
            raise
        return self

    def start_actions(self) -> None:
        """Spawn the action server (not waiting for it); it imports `actions` from the bot directory."""
        self._spawn("actions", [sys.executable, "-m", "rasa_sdk", "--actions", "actions",
                                "--port", str(self.action_port)], cwd=self.bot_dir,
                    env={"SANIC_HOST": self.host, settings.DB_ENV: str(self.memory_db),
                         server_guard.TOKEN_ENV: self.action_token, **self.env})

    def write_endpoints(self) -> Path:
        """This run's endpoints.yml: its action server (token from the environment) and tracker store."""
        endpoints = self.work_dir / "endpoints.yml"
        endpoints.write_text(
            "action_endpoint:\n"
            f'  url: "{self.action_url}/webhook"\n'
            # Unquoted: Rasa expands ${VAR} only in plain YAML scalars.
            f"  token: ${{{server_guard.TOKEN_ENV}}}\n"
            "tracker_store:\n"
            "  type: SQL\n"
            "  dialect: sqlite\n"
            f"  db: {json.dumps(str(self.trackers_db))}\n"
        )
        return endpoints

    def start_rasa(self) -> None:
        """Spawn the Rasa server (not waiting for it): auth_rest channel only, API behind --auth-token."""
        endpoints = self.endpoints or self.write_endpoints()
        # credentials.yml and config.yml name modules of the bot directory (auth_channel, store_router).
        pythonpath = bot_pythonpath(self.bot_dir)
        self._spawn("rasa", [sys.executable, "-m", "rasa", "run", "--enable-api", f"--auth-token={self.api_token}",
                             "--interface", self.host, "--port", str(self.rasa_port), "--model", str(self.model),
                             "--endpoints", str(endpoints),
                             "--credentials", str(self.bot_dir / "credentials.yml")],
                    cwd=self.work_dir,
                    env={"PYTHONPATH": pythonpath, auth_channel.SECRET_ENV: self.jwt_secret,
                         server_guard.TOKEN_ENV: self.action_token, **self.rasa_env})

    def _spawn(self, name: str, cmd: List[str], cwd: Path, env: Dict[str, str]) -> None:
        logger.info("Starting %s: %s", name, " ".join(cmd))
        self.processes.append((name, spawn_logged(cmd, self.log_path(name), cwd=cwd, env=child_env(env))))

    def wait_ready(self, actions: bool = True, rasa: bool = True) -> None:
        """Poll the action server's /health and Rasa's /status until both are ready, or raise.

        The action server's /health is a readiness check (student and database usable): an
        answer other than 200 fails at once with the problems it reports.
        """
        deadline = time.monotonic() + self.startup_timeout_s
        checks = {}
        if actions:
            checks["actions"] = f"{self.action_url}/health"
        if rasa:
            checks["rasa"] = f"{self.rasa_url}/status?token={urllib.parse.quote(self.api_token)}"
        while checks:
            for name, process in self.processes:
                if process.poll() is not None:
                    raise ServerError(f"The {name} server exited with code {process.returncode} while starting; "
                                      f"its log ({self.log_path(name)}) ends with:\n{read_tail(self.log_path(name))}")
            for name, url in list(checks.items()):
                try:
                    status, answer = http_request("GET", url, timeout=5 if name == "actions" else 2)
                except OSError:
                    continue
                if status == 200:
                    del checks[name]
                elif name == "actions":
                    problems = answer.get("problems") if isinstance(answer, dict) else answer
                    raise ServerError(f"The action server is not ready (HTTP {status}): {problems}")
            if checks and time.monotonic() > deadline:
                names = ", ".join(checks)
                raise ServerError(f"{names} not ready after {self.startup_timeout_s:.0f} s; see the logs in "
                                  f"{self.work_dir}.")
            if checks:
                time.sleep(POLL_INTERVAL_S)

    def stop(self) -> None:
        """Stop both servers (SIGTERM, then SIGKILL after a grace period); safe to call twice."""
        stop_processes(self.processes, signal.SIGTERM, STOP_TIMEOUT_S)
        self.processes.clear()

    def __enter__(self) -> "BotServers":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def token_for(self, user: str, ttl_s: float = auth_channel.DEFAULT_TTL_S) -> str:
        """A token for ``user``, as the website's login would mint it."""
        return auth_channel.mint_token(user, self.jwt_secret, ttl_s=ttl_s)

    @property
    def webhook_url(self) -> str:
        return f"{self.rasa_url}/webhooks/{auth_channel.AuthenticatedRestInput.name()}/webhook"

    def post(self, body: Any, token: Optional[str] = None) -> Tuple[int, Any]:
        """POST ``body`` to the auth_rest webhook with ``token`` (none when None); return (status, answer)."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return http_request("POST", self.webhook_url, body, headers=headers)

    def say(self, sender: str, text: Any) -> List[str]:
        """Send one message as signed-in user ``sender``; return the bot's text replies."""
        status, replies = self.post({"message": text}, token=self.token_for(sender))
        if status != 200:
            raise ServerError(f"POST {self.webhook_url} answered HTTP {status}: {str(replies)[:500]}")
        return [r.get("text", "") for r in replies or [] if r.get("text")]

    def api(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
        """Call Rasa's HTTP API with this run's auth token."""
        sep = "&" if "?" in path else "?"
        return http_json(method, f"{self.rasa_url}{path}{sep}token={urllib.parse.quote(self.api_token)}", body)

    def route(self, sender: str) -> Tuple[str, float]:
        """The intent (route) and confidence of the sender's latest message, from their tracker."""
        latest = self.api("GET", f"/conversations/{urllib.parse.quote(sender, safe='')}/tracker?include_events=NONE")
        intent = (latest.get("latest_message") or {}).get("intent") or {}
        return str(intent.get("name")), float(intent.get("confidence") or 0.0)

    def parse(self, text: str) -> Tuple[str, float]:
        """The route and confidence Rasa's NLU gives ``text`` (nothing is stored)."""
        intent = (self.api("POST", "/model/parse", {"text": text}) or {}).get("intent") or {}
        return str(intent.get("name")), float(intent.get("confidence") or 0.0)

    def stop_one(self, name: str) -> None:
        """Stop only the ``actions`` or ``rasa`` server (tests simulate an outage)."""
        keep = [(n, p) for n, p in self.processes if n != name]
        self.processes[:] = [(n, p) for n, p in self.processes if n == name]
        self.stop()
        self.processes[:] = keep

"""Child server processes on loopback: free ports, logged starts, group-wide stops, log tails.

One home for what servers.py (Rasa, actions) and local_services.py (PostgreSQL, Redis) both do.
"""
import logging
import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
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


def spawn_logged(cmd: List[str], log_path: Path, **popen_kw) -> subprocess.Popen:
    """Start ``cmd`` with stdout and stderr going to ``log_path``, in a session of its own."""
    with open(log_path, "w") as log:
        # A new session: Ctrl-C reaches only us, and stop_processes() can signal the whole group.
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **popen_kw)


def stop_processes(named: Sequence[Tuple[str, subprocess.Popen]], sig: int, timeout_s: float) -> None:
    """Send ``sig`` to each running process group, then wait for each; SIGKILL one that outlasts ``timeout_s``.

    All are signalled before any is waited for, so they shut down side by side.
    """
    for _, process in named:
        if process.poll() is None:
            signal_group(process, sig)
    for name, process in named:
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            logger.warning("%s ignored %s; killing it.", name, signal.Signals(sig).name)
            signal_group(process, signal.SIGKILL)
            process.wait(timeout=timeout_s)


def signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:  # already gone
        pass

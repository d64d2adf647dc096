"""`rasa train` for memory_bot (or another bot directory), run as a child process."""
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

from .processes import ServerError, child_env, read_tail

logger = logging.getLogger(__name__)

BOT_DIR = Path(__file__).resolve().parent


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
        done = subprocess.run(cmd, cwd=bot_dir, stdout=log, stderr=subprocess.STDOUT,
                              env=child_env({"PYTHONPATH": bot_pythonpath(bot_dir)}))
    finally:
        if log_path:
            log.close()
    model = latest_model(out_dir)
    if done.returncode != 0 or model is None:
        tail = read_tail(log_path) if log_path else "(no log kept)"
        raise ServerError(f"`rasa train` in {bot_dir} failed with exit code {done.returncode}:\n{tail}")
    return model


def bot_pythonpath(bot_dir: Path) -> str:
    """PYTHONPATH with the bot directory first: config.yml and credentials.yml name modules there."""
    return os.pathsep.join(p for p in [str(bot_dir), os.environ.get("PYTHONPATH", "")] if p)


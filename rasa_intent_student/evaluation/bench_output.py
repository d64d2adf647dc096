"""Reading back what ``rasa-intent-student bench --json`` printed: its last line is every result as one JSON object."""
import json
from pathlib import Path
from typing import Any, Dict, Optional

from rasa_intent_student.errors import StudentError


def bench_json(path: Path) -> Dict[str, Any]:
    """The results object of a saved ``bench --json`` output (its last line that is a JSON object)."""
    lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.startswith("{")]
    if not lines:
        raise StudentError(f"{path} holds no JSON line; write it with `rasa-intent-student bench --json ... > {path}`.")
    return json.loads(lines[-1])


def load_bench_quality(path: Path) -> Dict[str, Dict[str, float]]:
    """model name -> {lang: accuracy} from ``rasa-intent-student bench --json`` output (its last JSON line)."""
    models = bench_json(path).get("quality", {}).get("models", [])
    if not models:
        raise StudentError(f"{path} has no quality results; run bench without --skip-quality.")
    return {m["name"]: {lang: v["accuracy"] for lang, v in m["per_language"].items()} for m in models}


def load_bench_protocols(path: Path) -> Optional[Dict[str, Any]]:
    """The fidelity protocols of a ``bench --json`` output (None when it skipped them)."""
    return bench_json(path).get("protocols")

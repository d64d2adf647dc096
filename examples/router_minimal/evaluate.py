"""Route accuracy of a trained router_minimal model on the package's route data, per language.

Run from the repository root after `rasa train` in examples/router_minimal:
    python -m examples.router_minimal.evaluate [MODEL.tar.gz] [--split dev]
"""
import argparse
import asyncio
import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Dict, Optional, Sequence

BOT_DIR = Path(__file__).resolve().parent


async def _accuracy(model: Path, split: str) -> Dict[str, float]:
    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    from rasa_intent_student.routes import load_routes

    configure_structlog(logging.ERROR)  # Rasa's structlog prints every parse at debug level otherwise
    agent = Agent.load(str(model))
    right, total = Counter(), Counter()
    for row in load_routes(split):
        intent = (await agent.parse_message(row.text))["intent"]["name"]
        total[row.lang] += 1
        right[row.lang] += intent == row.label
    return {lang: right[lang] / total[lang] for lang in total}


def route_accuracy(model: Path, split: str = "dev") -> Dict[str, float]:
    """Accuracy per language code of the model's intent on every row of ``split``."""
    return asyncio.run(_accuracy(Path(model), split))


def newest_model(models_dir: Path = BOT_DIR / "models") -> Path:
    models = sorted(models_dir.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not models:
        raise FileNotFoundError(f"No trained model in {models_dir}; run `rasa train` in {BOT_DIR} first.")
    return models[-1]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.router_minimal.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=Path, help="trained model (default: newest in models/)")
    parser.add_argument("--split", default="dev", help="route data split (default: dev)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    accuracy = route_accuracy(args.model or newest_model(), args.split)
    print(f"{'lang':6}accuracy")
    for lang, value in accuracy.items():
        print(f"{lang:6}{value:.3f}")
    others = [v for lang, v in accuracy.items() if lang != "en"]
    print(f"en {accuracy.get('en', float('nan')):.3f} | other languages mean {sum(others) / max(len(others), 1):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The learning-rate schedule and the sizing of a run to a wall-time budget."""
import math
import time
from dataclasses import replace
from typing import Optional, Tuple

from rasa_intent_student.factory.distill.config import DistillConfig

RESIZE_AFTER_STEPS = 250  # steps after warmup at which a time-budgeted run re-measures its speed
BUDGET_KEPT = 0.92  # share of the remaining time planned for training (the rest: evaluations, saving)


def lr_at(step: int, config: DistillConfig) -> float:
    """Linear warmup, then cosine decay to 10% (nanoGPT's schedule)."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps))
    return config.lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


class StepBudget:
    """Sizes ``max_steps`` to ``max_minutes`` when it is 0: warmup does not depend on max_steps, so it is
    timed (without the first, slow steps), the cosine schedule is fitted to what is left, and the estimate
    is corrected once more a few hundred steps later, while the schedule has barely moved."""

    def __init__(self, config: DistillConfig, start_step: int) -> None:
        self.active = config.max_steps <= 0
        self.skip_until = start_step + min(5, config.warmup_steps // 2)
        self.resize_at = (config.warmup_steps, config.warmup_steps + RESIZE_AFTER_STEPS)
        self.started = time.time()
        self.timed_from: Optional[Tuple[int, float]] = None

    def update(self, step: int, config: DistillConfig) -> Tuple[DistillConfig, Optional[str]]:
        """The config (with max_steps sized at the resize points) and a line to log, if it changed."""
        if not self.active:
            return config, None
        if step == self.skip_until:
            self.timed_from = (step, time.time())
        if step in self.resize_at and self.timed_from is not None:
            rate = (step - self.timed_from[0]) / max(time.time() - self.timed_from[1], 1e-9)
            left = config.max_minutes * 60 - (time.time() - self.started)
            config = replace(config, max_steps=max(step + 1, int(BUDGET_KEPT * rate * left + step)))
            return config, f"measured {rate:.2f} steps/s: max_steps = {config.max_steps} for max_minutes={config.max_minutes}"
        return config, None

    def out_of_time(self, config: DistillConfig) -> bool:
        return config.max_minutes > 0 and time.time() - self.started > config.max_minutes * 60

"""Honest selection: a headline variant is chosen on validation figures, then its test figures are reported.

    scores = {name: validation_metrics_of(name)["ssim_paper"] for name in candidates}
    chosen = select_best(scores, "ssim_paper", n=2000)     # chosen.name, chosen.value, chosen.runner_up
    report(test_row_of(chosen.name))

The validation figures come from the task's own test step on the validation images (for phase retrieval,
``data.test_split=val`` through :func:`harness.quality.run_metrics`), never from the test set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Selection:
    """The candidate with the best validation ``metric`` (``value``) among ``scores``, on ``n`` images."""

    name: str
    metric: str
    value: float
    n: int
    scores: dict[str, float]
    higher_is_better: bool = True

    @property
    def runner_up(self) -> str | None:
        """The second-best candidate (None when there was one)."""
        ranked = sorted(self.scores, key=self.scores.__getitem__, reverse=self.higher_is_better)
        return ranked[1] if len(ranked) > 1 else None

    def describe(self, what: str) -> str:
        """One line for a results table: what was chosen, on what, among which candidates."""
        others = ", ".join(
            f"`{name}` {value:.4f}" for name, value in self.scores.items() if name != self.name
        )
        return (
            f"{what}: `{self.name}`, chosen on validation ({self.metric} {self.value:.4f} on {self.n} "
            f"validation images{'; others ' + others if others else ''}); its test row is the one reported."
        )


def select_best(
    scores: Mapping[str, float], metric: str, n: int, higher_is_better: bool = True
) -> Selection | None:
    """The candidate whose validation ``metric`` is best (max, or min when not ``higher_is_better``); ties go
    to the first given. None when there are no candidates."""
    if not scores:
        return None
    better = max if higher_is_better else min
    name = better(scores, key=scores.__getitem__)
    return Selection(name, metric, float(scores[name]), n, dict(scores), higher_is_better)

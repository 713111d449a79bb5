"""Goals judged one figure at a time, each with a printed verdict line, and the bench's exit code.

A goal is judged on a figure the bench prints: one measurement, the largest of several, or a
stated tail (p95, p99) — never the best or the median of tries, which hide the slow ones.
Verdict lines start with ``OK``, ``MISS`` or ``FAIL`` (an integrity check), so `make bench`
(bench/run_all.py) can list every miss from a results file:

    judge = Judge()
    judge.goal("one fit", seconds, 0.1, unit="s")
    judge.goal("speed-up vs PySODMetrics", ratio, 10, better="higher", unit="×")
    judge.check("strengths agree with scikit-learn", diff <= 1e-4, f"max diff {diff:.1e}")
    return judge.finish()
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

#: How a verdict line starts; bench/run_all.py lists the lines that start with a miss marker.
OK, MISS, FAIL = "OK  ", "MISS", "FAIL"
MISS_MARKERS = (MISS, FAIL)


def pct(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile ``p`` of ``values`` (p = 100 is the maximum)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


@dataclass(frozen=True)
class Goal:
    """``value`` must be at most ``limit`` (``better="lower"``) or at least it (``"higher"``)."""

    name: str
    value: float
    limit: float
    better: Literal["lower", "higher"] = "lower"
    unit: str = ""

    @property
    def met(self) -> bool:
        return self.value <= self.limit if self.better == "lower" else self.value >= self.limit

    def line(self) -> str:
        op = "<=" if self.better == "lower" else ">="
        unit = f" {self.unit}" if self.unit and self.unit not in ("×", "%") else self.unit
        return (
            f"{OK if self.met else MISS} goal {self.name}: {_fmt(self.value)}{unit} "
            f"(goal {op} {_fmt(self.limit)}{unit})"
        )


def _fmt(x: float) -> str:
    if float(x).is_integer():
        return str(int(x))
    return f"{x:.3g}" if abs(x) < 10 else f"{x:.1f}" if abs(x) < 1000 else f"{x:.0f}"


class Judge:
    """Collects a bench's verdicts; ``finish()`` prints the summary and returns the exit code."""

    def __init__(self) -> None:
        self.misses: list[str] = []

    def goal(
        self,
        name: str,
        value: float,
        limit: float,
        better: Literal["lower", "higher"] = "lower",
        unit: str = "",
    ) -> bool:
        goal = Goal(name, value, limit, better, unit)
        self._record(goal.line(), goal.met)
        return goal.met

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        """An integrity check (results agree with the reference, nothing lost): not a timing."""
        self._record(f"{OK if ok else FAIL} check {name}" + (f": {detail}" if detail else ""), ok)
        return ok

    def _record(self, line: str, ok: bool) -> None:
        print(line, flush=True)
        if not ok:
            self.misses.append(line)

    def finish(self) -> int:
        if self.misses:
            print(f"{len(self.misses)} goal(s) or check(s) missed")
            return 1
        print("all goals and checks met")
        return 0

"""Sizes and thresholds of the evidence battery, validated at construction.

Every threshold is a parameter with a documented default and is written into
the scorecard next to the number it judges, so a reader can re-judge a result
with their own threshold without re-running anything.

The thresholds were fixed once, with the rebuilt battery (version 2), before it
was run on any trained model: each is an effect size on a margin over the
*strongest* control (random-init twins of >= 5 seeds, shuffled labels, the
constant predictor and every search-free baseline), judged on a bootstrap lower
bound corrected for the layers and positions searched and Holm-corrected across
tests. The planted models clear them and models lacking the property do not
(`tests/unit/evidence`); `tests/unit/evidence/test_thresholds.py` pins the values,
so moving one after seeing results is a visible change.

Calibration on null models (`benchmarks/calibrate_thresholds.py`, recorded in
`benchmarks/results/calibration_battery_v2.json`; no threshold was moved): 16
draws per path test (13 random-init twins of the tree-path, graph-search and
maze zoo architectures, 3 memorizers) and 17 for the circuit test gave 0
passes each, a one-sided 95% upper bound of 0.17 on the false-positive rate:
consistent with alpha = 0.05, not yet shown (that takes >= 59 passless draws).
On the point estimate alone, 11 of 16 null draws clear `iterative_margin`
(leads up to 0.64, corrected lower bounds up to 0.23) and one memorizer clears
`faithfulness_threshold` (0.83): those tests rely on the interval bound and on
`iterative.MIN_RISE` (which failed every null draw whose lead bound came near).
On the planted models the thresholds are not always reachable: planted-flood
(maze) decodes the goal at 1.000 but random-init twins reach 0.73-0.77, so
`goal_margin` cannot be cleared (lower bound 0.188).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from mesainterp.errors import ConfigError

__all__ = ["EvidenceConfig"]


@dataclass(frozen=True, kw_only=True)
class EvidenceConfig:
    """What the battery runs and how it judges.

    Sizes:
    n_examples:   examples for every probe (held-out accuracy by `folds`-fold CV).
    n_pairs:      counterfactual pairs for goal retargeting and the circuit.
    n_random:     random-direction draws (retargeting) and random edge sets (circuit).
    n_twins:      random-init twins (seeds) forming the random-init distribution (>= 5).
    n_boot:       bootstrap resamples for every interval; 2000 so that the smallest
                  bootstrap p (1 / 2001), times the cells searched (<= 3 positions x
                  6 layers) and Holm's factor over 6 tests, can still reach 0.05.
    folds:        cross-validation folds.
    state_ranks:  how many steps of the search state the iterative test probes
                  (ancestors 1..k of the goal, or path steps 1..k).
    seed:         seeds every draw of examples, folds, directions and resamples.

    Thresholds (each judged on the test's margin; see `mesainterp.evidence` docs):
    goal_margin:          goal probe accuracy minus the best control (random-init
                          twins, shuffled labels, majority, search-free baselines
                          that do not contain the goal), default 0.2: a fifth of
                          all examples decoded beyond anything the prompt's cheap
                          features give, far above a 1/n_nodes chance rate.
    retarget_margin:      fraction of runs steered to goal B's exact answer along the
                          probe subspace minus along random subspaces of equal size and
                          edit norm, default 0.2.
    lookahead_margin:     skill of the future-node ranking over the best control,
                          (AUC - control) / (1 - control), default 0.2, on all
                          candidates and on the candidates a degree heuristic cannot
                          reject: the model closes a fifth of what the best
                          search-free ranking leaves.
    iterative_margin:     lead of the (k-1)-th state over the k-th (fraction of its
                          full rise reached at a layer where the k-th has not yet
                          risen), weakest consecutive pair, default 0.25: a quarter
                          of a full rise, which one-layer computation cannot show.
    circuit_fraction:     share of the model's edges kept by the localised circuit,
                          default 0.1; `curve_fractions` are reported beside it.
    faithfulness_threshold: faithfulness (resample ablation) the circuit must reach,
                          default 0.8.
    algorithm_threshold:  R² of the model's predictions explained by the closest
                          reference algorithm (one GD step or least squares), default 0.9.
    """

    n_examples: int = 600
    n_pairs: int = 32
    n_random: int = 3
    n_twins: int = 5
    n_boot: int = 2000
    folds: int = 5
    state_ranks: int = 4
    seed: int = 0
    goal_margin: float = 0.2
    retarget_margin: float = 0.2
    lookahead_margin: float = 0.2
    iterative_margin: float = 0.25
    circuit_fraction: float = 0.1
    curve_fractions: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2)
    faithfulness_threshold: float = 0.8
    algorithm_threshold: float = 0.9

    def __post_init__(self) -> None:
        for name, lo in (
            ("n_examples", 20), ("n_pairs", 2), ("n_random", 1), ("n_twins", 5), ("n_boot", 10),
            ("folds", 2), ("state_ranks", 1),
        ):  # fmt: skip
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise ConfigError(name, f"expected an int >= {lo}, got {v!r}")
        if self.n_examples < 4 * self.folds:
            raise ConfigError(
                "n_examples", f"{self.n_examples} is too few for {self.folds} folds",
                f"an int >= {4 * self.folds}",
            )  # fmt: skip
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ConfigError("seed", f"expected a non-negative int, got {self.seed!r}")
        for name in (
            "goal_margin", "retarget_margin", "lookahead_margin", "iterative_margin",
            "faithfulness_threshold", "algorithm_threshold",
        ):  # fmt: skip
            v = getattr(self, name)
            if not isinstance(v, int | float) or isinstance(v, bool) or not -1.0 <= v <= 1.0:
                raise ConfigError(name, f"expected a number in [-1, 1], got {v!r}")
        fractions = (self.circuit_fraction, *self.curve_fractions)
        for i, f in enumerate(fractions):
            field = "circuit_fraction" if i == 0 else f"curve_fractions[{i - 1}]"
            if not isinstance(f, int | float) or isinstance(f, bool) or not 0.0 < f <= 1.0:
                raise ConfigError(field, f"expected a number in (0, 1], got {f!r}")
        object.__setattr__(self, "curve_fractions", tuple(float(f) for f in self.curve_fractions))

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["curve_fractions"] = list(self.curve_fractions)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvidenceConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(unknown[0], "unknown evidence setting", ", ".join(sorted(known)))
        data = dict(data)
        if "curve_fractions" in data:
            data["curve_fractions"] = tuple(data["curve_fractions"])
        return cls(**data)

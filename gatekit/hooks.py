"""Online gate for training loops: stop a teacher once it has crossed the gate.

    hook = GateHook.from_file("gate.json")        # a fitted gate (gatekit fit --save), or a preset
    for epoch in ...:
        metrics = {"action_magnitude": ...}
        meta["gate"] = hook.state_dict()          # saved with the checkpoint
        if hook.update(env_steps, metrics):
            break                                 # the teacher is ready to distill from

On resume, ``GateHook.from_state_dict(meta["gate"])`` continues the count instead of restarting
it (Lightning EarlyStopping persists its state the same way; Keras does not, a known complaint).

A hook sees only what exists when a checkpoint is saved: retrospective statistics (CKA / q_corr
to the run's final checkpoint) are refused; their online versions (``cka_sa_prev``, ...) work.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

from gatekit import rule as R
from gatekit.errors import GatekitError
from gatekit.io.gates import Gate
from gatekit.statistics import BUDGET_FRACTION, check_online


@dataclasses.dataclass
class GateHook:
    """Stops training once ``metric`` has passed the gate ``patience`` times in a row.

    Args:
      threshold: the gate (0.63 for action_magnitude in the paper).
      metric: key looked up in the row given to :meth:`update` (a
        :func:`gatekit.statistics.checkpoint_row`, so the same columns as ``gatekit score``).
      direction: "below" (value < threshold passes) or "above" (:mod:`gatekit.rule`).
      patience: consecutive passing updates needed to stop.
      start_step: updates at steps below this never count (warm-up).
      strict: if True, a missing metric raises GatekitError; else it counts as a failure.
      mode: deprecated alias of ``direction``.
    """

    threshold: float = 0.63
    metric: str = "action_magnitude"
    direction: str = "below"
    patience: int = 1
    start_step: int = 0
    strict: bool = True
    transform: str = "raw"
    """The form of the metric the rule reads (:mod:`gatekit.transforms`); a scale-free form is
    computed over the values this hook has seen (``history``, saved in its state)."""
    history: list = dataclasses.field(default_factory=list)
    count: int = 0
    last_step: int | None = None
    last_value: float | None = None
    stopped_step: int | None = None
    armed: bool = False
    """True once the rule has not passed at some checkpoint: a gate stops a teacher only when
    crossed (:mod:`gatekit.rule`), never because it holds from the first checkpoint on."""
    held_at_start: int | None = None
    """The first step, when the rule already passed there (it separates nothing on this run)."""
    mode: dataclasses.InitVar[str | None] = None

    def __post_init__(self, mode: str | None = None):
        self.last_passed = False
        self.direction = R.alias(self.direction, mode)
        from gatekit.transforms import RETROSPECTIVE_FORMS

        try:  # the rule is checked once, by the Gate it becomes
            self._gate = Gate(self.metric, self.direction, self.threshold, self.patience, transform=self.transform)
        except GatekitError as e:
            raise GatekitError(f"GateHook: {str(e).removeprefix('gate: ')}") from None
        self._rule = self._gate.to_rule()
        self.threshold = self._rule.threshold
        check_online(self.metric, user="a training hook")
        if self.transform in RETROSPECTIVE_FORMS:
            raise GatekitError(f"GateHook: {self.transform}({self.metric}) needs the run's final checkpoint (information "
                               f"from the future): a training hook cannot apply it; `gatekit select` can")

    @classmethod
    def from_gate(cls, gate: Gate, **kwargs) -> "GateHook":
        """A hook that applies a :class:`gatekit.io.gates.Gate` (metric, direction, threshold, patience)."""
        hook = cls(threshold=gate.threshold, metric=gate.metric, direction=gate.direction, patience=gate.patience,
                   transform=gate.transform, **kwargs)
        hook._gate = gate  # with its name and record
        return hook

    @property
    def gate(self) -> Gate:
        """The :class:`gatekit.io.gates.Gate` this hook applies (the one given to :meth:`from_gate`)."""
        return self._gate

    @classmethod
    def from_file(cls, path, **kwargs) -> "GateHook":
        """A hook from a ``gatekit-gate/1`` file (``gatekit fit --save``) or a preset name."""
        from gatekit.io.gates import read_gate
        from gatekit.statistics import check_gate_metric

        gate = read_gate(path)
        check_gate_metric(gate, str(path))
        return cls.from_gate(gate, **kwargs)

    @property
    def stopped(self) -> bool:
        return self.stopped_step is not None

    def update(self, step: int, metrics: Mapping[str, Any]) -> bool:
        """Records one evaluation; returns True when the teacher should stop now."""
        if self.stopped:
            return True
        if self.last_step is not None and step <= self.last_step:
            return False  # a replayed step after resume: already counted
        if self.metric not in metrics:
            if self.strict and self.metric == BUDGET_FRACTION:
                raise GatekitError(f"GateHook: the gate reads {BUDGET_FRACTION!r}, this checkpoint's share of the planned "
                                   f"training: add it to the metrics you pass (e.g. epoch / planned epochs)")
            if self.strict:
                raise GatekitError(f"GateHook: metric {self.metric!r} missing from {sorted(metrics)}")
            value = math.nan
        else:
            raw = metrics[self.metric]
            value = math.nan if raw is None else float(raw)  # None: not defined yet (no previous checkpoint)
        self.last_value = value if math.isfinite(value) else None
        if self.transform != "raw":
            from gatekit.transforms import transform

            self.history.append(self.last_value)
            value = float(transform([math.nan if v is None else v for v in self.history], self.transform)[-1])
        if step < self.start_step:
            self.last_step = int(step)
            return False
        self.last_passed = self._rule.passes(value)
        if self.last_step is None and not self.armed and self.last_passed:
            self.held_at_start = int(step)
        streak = R.advance(R.Streak(self.count, self.last_step, self.patience, self.armed), int(step), value,
                           self._rule)
        self.count, self.last_step, self.armed = streak.count, streak.last_step, streak.armed
        if streak.held:
            self.stopped_step = int(step)
            return True
        return False

    @property
    def note(self) -> str | None:
        """One sentence when the rule held at the first checkpoint (so it will not stop the teacher
        there), else None."""
        if self.held_at_start is None or self.armed:
            return None
        return (f"the gate ({self._rule.text}) already holds at the first checkpoint (step {self.held_at_start}): it "
                f"separates nothing on this run and stops the teacher only if it stops holding and holds again")

    def should_save(self, step: int, last_saved_step: int | None = None) -> bool:
        """For Orbax's ``CheckpointManagerOptions(should_save_fn=hook.should_save)``: save every
        step until the gate has held, then only the step at which it held (checked after
        :meth:`update`), so the checkpoint to distill from is the last one written.
        ``last_saved_step`` is unused; Orbax calls ``should_save_fn(step, last_saved_step)``."""
        return not self.stopped or step == self.stopped_step

    def state_dict(self) -> dict:
        """JSON-ready state (settings and counters)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def load_state_dict(self, state: Mapping[str, Any]) -> "GateHook":
        """Restores counters from :meth:`state_dict`; settings must match this hook's."""
        state = _renamed(state)
        for k in ("threshold", "metric", "direction", "patience", "transform"):
            if k in state and state[k] != getattr(self, k):
                raise GatekitError(
                    f"GateHook: saved state has {k}={state[k]!r} but this hook has {getattr(self, k)!r}"
                )
        for k in ("count", "last_step", "last_value", "stopped_step", "history", "armed", "held_at_start"):
            if k in state:
                setattr(self, k, state[k])
        return self

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> "GateHook":
        state = _renamed(state)
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(state) - fields)
        if unknown:
            raise GatekitError(f"GateHook: unknown state key(s) {unknown}")
        return cls(**dict(state))


def _renamed(state: Mapping[str, Any]) -> dict:
    """State saved before ``mode`` was renamed ``direction`` (checkpoints of gatekit 0.1)."""
    state = dict(state)
    if "mode" in state:
        state.setdefault("direction", state.pop("mode"))
    return state

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

from gatekit.errors import GatekitError
from gatekit.gate import Gate, _check_direction, _check_threshold, passes
from gatekit.metrics import check_online


@dataclasses.dataclass
class GateHook:
    """Stops training once ``metric`` has passed the gate ``patience`` times in a row.

    Args:
      threshold: the gate (0.63 for action_magnitude in the paper).
      metric: key looked up in the metrics dict given to :meth:`update`.
      mode: "below" (value < threshold passes) or "above".
      patience: consecutive passing updates needed to stop.
      start_step: updates at steps below this never count (warm-up).
      strict: if True, a missing metric raises GatekitError; else it counts as a failure.
    """

    threshold: float = 0.63
    metric: str = "action_magnitude"
    mode: str = "below"
    patience: int = 1
    start_step: int = 0
    strict: bool = True
    count: int = 0
    last_step: int | None = None
    last_value: float | None = None
    stopped_step: int | None = None

    def __post_init__(self):
        _check_direction(self.mode)
        self.threshold = _check_threshold(self.threshold, "GateHook: threshold")
        if isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 1:
            raise GatekitError(f"GateHook: patience must be an integer >= 1, got {self.patience!r}")
        check_online(self.metric, user="a training hook")

    @classmethod
    def from_gate(cls, gate: Gate, **kwargs) -> "GateHook":
        """A hook that applies a :class:`gatekit.gate.Gate` (metric, direction, threshold, patience)."""
        return cls(threshold=gate.threshold, metric=gate.metric, mode=gate.direction, patience=gate.patience, **kwargs)

    @classmethod
    def from_file(cls, path, **kwargs) -> "GateHook":
        """A hook from a ``gatekit-gate/1`` file (``gatekit fit --save``) or a preset name."""
        from gatekit.checkpoints import read_gate

        return cls.from_gate(read_gate(path), **kwargs)

    @property
    def stopped(self) -> bool:
        return self.stopped_step is not None

    def update(self, step: int, metrics: Mapping[str, Any]) -> bool:
        """Records one evaluation; returns True when the teacher should stop now."""
        if self.stopped:
            return True
        if self.last_step is not None and step <= self.last_step:
            # A replayed step after resume: already counted.
            return False
        if self.metric not in metrics:
            if self.strict:
                raise GatekitError(f"GateHook: metric {self.metric!r} missing from {sorted(metrics)}")
            value = math.nan
        else:
            raw = metrics[self.metric]
            value = math.nan if raw is None else float(raw)  # None: not defined yet (no previous checkpoint)
        self.last_step, self.last_value = int(step), value if math.isfinite(value) else None
        if step < self.start_step:
            return False
        self.count = self.count + 1 if passes(value, self.threshold, self.mode) else 0
        if self.count >= self.patience:
            self.stopped_step = int(step)
            return True
        return False

    def should_save(self, step: int, last_saved_step: int | None = None) -> bool:
        """For Orbax's ``CheckpointManagerOptions(should_save_fn=hook.should_save)``: save every
        step until the gate has held, then only the step at which it held (checked after
        :meth:`update`), so the checkpoint to distill from is the last one written."""
        return not self.stopped or step == self.stopped_step

    def state_dict(self) -> dict:
        """JSON-ready state (settings and counters)."""
        return dataclasses.asdict(self)

    def load_state_dict(self, state: Mapping[str, Any]) -> "GateHook":
        """Restores counters from :meth:`state_dict`; settings must match this hook's."""
        for k in ("threshold", "metric", "mode", "patience"):
            if k in state and state[k] != getattr(self, k):
                raise GatekitError(
                    f"GateHook: saved state has {k}={state[k]!r} but this hook has {getattr(self, k)!r}"
                )
        for k in ("count", "last_step", "last_value", "stopped_step"):
            if k in state:
                setattr(self, k, state[k])
        return self

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> "GateHook":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(state) - fields)
        if unknown:
            raise GatekitError(f"GateHook: unknown state key(s) {unknown}")
        return cls(**dict(state))

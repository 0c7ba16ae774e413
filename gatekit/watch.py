"""Follow a run as it trains: score each new checkpoint once Orbax has finalized it, with online
statistics only, and report when the gate holds (for trainers gatekit does not control).

    for event in watch("runs/t0", gate=read_gate("gate.json")):
        print(event)              # one per new checkpoint; event["stop"] once the gate holds
"""

from __future__ import annotations

import pathlib
import time
from typing import Iterator

from gatekit import interrupts, io
from gatekit import networks
from gatekit.errors import GatekitError, plain_reason
from gatekit.hooks import GateHook
from gatekit.io.gates import Gate


def watch(run_dir, *, gate: Gate, interval: float = 5.0, timeout: float | None = None, wait: float = 60.0,
          stop_at_gate: bool = True, sleep=time.sleep, clock=time.monotonic) -> Iterator[dict]:
    """Yields one event per newly finalized checkpoint, in step order, forever (or until
    ``timeout`` seconds pass with no new checkpoint, or the gate holds with ``stop_at_gate``).
    A run folder that does not exist yet (a trainer just started) is waited for up to ``wait``
    seconds.

    Event: ``{"step", "epoch", "value", "passes", "count", "stop", "problem", "note"}`` (``note``: once,
    when the gate already holds at the first checkpoint, which never stops it); a checkpoint that
    cannot be scored yields ``problem`` (the reason) and does not reset the previous checkpoint
    used for drift. Retrospective metrics are refused (they need the run's final checkpoint).
    """
    from gatekit.statistics import (BUDGET_FRACTION, budget_fraction, checkpoint_row, checkpoint_statistics,
                                    planned_epochs)

    hook = GateHook.from_gate(gate, strict=False)  # refuses retrospective metrics
    if interval <= 0:
        raise GatekitError(f"--interval must be > 0, got {interval}")
    started = clock()
    while not (pathlib.Path(run_dir) / io.RUN_JSON).exists():
        if clock() - started > wait:
            raise GatekitError(f"{run_dir}: no run appeared there within {wait:g} s (no {io.RUN_JSON}); "
                               f"is the trainer writing to this folder?")
        sleep(min(interval, 1.0))
    run = io.read_run(run_dir)
    planned = planned_epochs(run.config)
    if gate.metric == BUDGET_FRACTION and budget_fraction(1, planned) is None:
        raise GatekitError(f"{run_dir}: the gate {gate.name or 'rule'!r} reads {BUDGET_FRACTION} (a checkpoint's share "
                           f"of the planned training), but its run.json records no planned epochs (train.epochs); "
                           f"give another gate (--gate FILE or a one-off --threshold/--metric)")
    family = networks.build(run.family, run.net)
    tau = run.tau
    probe = io.load_probe(run)
    seen: set[int] = set()
    prev = None
    last_new = clock()
    while True:
        interrupts.check()
        if not (run.path / io.RUN_JSON).exists():
            raise GatekitError(f"{run.path}: the run folder (or its run.json) disappeared while watching")
        steps, _ = io.list_checkpoints(run)  # complete, finalized steps only
        new = [s for s in steps if s not in seen]
        for step in new:
            seen.add(step)
            event = {"step": step, "epoch": None, "value": None, "passes": False, "count": hook.count,
                     "stop": False, "problem": None}
            try:
                ck = io.load_checkpoint(run, step)
                networks.check_params(run.family, ck.params)
                stats = checkpoint_statistics(family, ck.params, prev, ck.sample, tau=tau, probe=probe)
                row = checkpoint_row(step, ck.meta, stats, planned_epochs=planned)
            except Exception as e:  # noqa: BLE001 - one bad checkpoint is reported, not fatal
                event["problem"] = plain_reason(e)
                yield event
                continue
            prev = ck.params
            stop = hook.update(step, row)
            event.update(epoch=row["epoch"], value=row.get(gate.metric), passes=hook.last_passed,
                         count=hook.count, stop=stop, note=hook.note if step == hook.held_at_start else None)
            yield event
            if stop and stop_at_gate:
                return
        if new:
            last_new = clock()
        elif timeout is not None and clock() - last_new > timeout:
            return
        sleep(interval)

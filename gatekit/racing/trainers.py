"""Who trains a race's students: the backends behind one interface.

A trainer has ``train(checkpoint, seed, epochs, out) -> float``: distill a student from
``checkpoint`` (``RUN@STEP``, as ``select`` prints it) with seed ``seed`` for ``epochs`` epochs into
the folder ``out`` and return its outcome (larger is better), and ``describe() -> dict`` (what
race.json records, so a race folder is never reused for other settings). ``out`` is the same
folder for one (checkpoint, seed) at every epoch count, so a trainer that resumes pays only the
extra epochs under successive halving.

* :class:`CallableTrainer`: any Python function ``fn(checkpoint, seed, epochs, out)``;
* :class:`CommandTrainer`: a command template run per student (``--student-cmd``), whose outcome
  is read from ``{out}/outcome.json``;
* :class:`ReplayTrainer`: outcomes already measured (the gate benchmark's dataset): the benchmark
  scores strategies through it, with the same engine loop a live race runs;
* this project's trainer (``gatekit-train``), found through the ``gatekit.trainers`` entry point
  (:func:`builtin_trainer`), so gatekit never imports ``training``.

Every trainer must be picklable to run in processes, on Dask or through submitit.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import shlex
import signal
import subprocess
from typing import Any, Callable, Mapping

from gatekit.errors import GatekitError

ENTRY_POINT_GROUP = "gatekit.trainers"
SEED_BASE = 1000
"""Seed index ``k`` of a race is student seed ``SEED_BASE + k`` (the built-in trainer's students
have always used seeds 1000, 1001, ...)."""
FIELDS = ("checkpoint", "run", "step", "seed", "epochs", "out")


def outcome_number(value: Any, where: str) -> float:
    """A finite float from what a trainer returned; GatekitError naming ``where`` otherwise (so a
    NaN or a string is a failed student, never a silent NaN in the race)."""
    if isinstance(value, Mapping):
        value = value.get("outcome")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GatekitError(f"{where}: the outcome is {value!r}, not a number")
    v = float(value)
    if not math.isfinite(v):
        raise GatekitError(f"{where}: the outcome is {v}, not a finite number")
    return v


@dataclasses.dataclass(frozen=True)
class CallableTrainer:
    """``fn(checkpoint, seed, epochs, out) -> float`` (or ``{"outcome": float}``), called with the
    real seed (:data:`SEED_BASE` + the seed index). ``fn`` must be importable (a module-level
    function) to run outside this process."""

    fn: Callable[..., Any]

    def train(self, checkpoint: str, seed: int, epochs: int, out: pathlib.Path) -> float:
        return outcome_number(self.fn(checkpoint, SEED_BASE + seed, epochs, out), f"{out}")

    def describe(self) -> dict:
        return {"trainer": "callable", "fn": f"{getattr(self.fn, '__module__', '?')}.{getattr(self.fn, '__qualname__', self.fn)}"}


@dataclasses.dataclass(frozen=True)
class CommandTrainer:
    """A command per student. ``template`` is split like a shell line (no shell runs it), then
    each word's ``{checkpoint}`` (``RUN@STEP``), ``{run}``, ``{step}``, ``{seed}`` (the real seed),
    ``{epochs}`` and ``{out}`` are filled in, so a value never becomes two words or a shell command.
    Its output goes to ``{out}/student.log``; it is killed (with its children) after ``timeout``
    seconds; its outcome is ``outcome_key`` of the JSON file ``{out}/outcome_file``."""

    template: str
    outcome_file: str = "outcome.json"
    outcome_key: str = "outcome"
    timeout: float | None = None

    def __post_init__(self):
        words = check_template(self.template)
        object.__setattr__(self, "_words", words)
        if not self.outcome_file or pathlib.PurePath(self.outcome_file).is_absolute() or ".." in pathlib.PurePath(
                self.outcome_file).parts:
            raise GatekitError(f"--outcome-file {self.outcome_file!r}: a file name inside the student's folder")
        if self.timeout is not None and (isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float))
                                         or not math.isfinite(self.timeout) or self.timeout <= 0):
            raise GatekitError(f"--timeout must be a number of seconds > 0, got {self.timeout!r}")

    def train(self, checkpoint: str, seed: int, epochs: int, out: pathlib.Path) -> float:
        out = pathlib.Path(out)
        out.mkdir(parents=True, exist_ok=True)
        run, _, step = checkpoint.rpartition("@")
        values = {"checkpoint": checkpoint, "run": run, "step": step, "seed": str(SEED_BASE + seed),
                  "epochs": str(epochs), "out": str(out)}
        argv = [w.format(**values) for w in self._words]
        result = out / self.outcome_file
        result.unlink(missing_ok=True)  # an outcome from an earlier, shorter run is never read as this one's
        with open(out / "student.log", "ab") as log:
            try:
                proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
            except OSError as e:
                raise GatekitError(f"--student-cmd: cannot run {argv[0]!r} ({e.strerror or e})") from None
            try:
                rc = proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                raise GatekitError(f"{out}: the student command ran past --timeout {self.timeout:g} s and was "
                                   f"stopped") from None
            except BaseException:
                _kill_group(proc)
                raise
        if rc != 0:
            raise GatekitError(f"{out}: the student command exited with {rc} (its output: {out / 'student.log'})")
        try:
            text = result.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise GatekitError(f"{result}: the student command wrote no readable outcome ({e})") from None
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            raise GatekitError(f"{result}: not JSON ({text[:60]!r})") from None
        if not isinstance(data, dict) or self.outcome_key not in data:
            raise GatekitError(f"{result}: no key {self.outcome_key!r} (expected {{\"{self.outcome_key}\": <number>}})")
        return outcome_number(data[self.outcome_key], str(result))

    def describe(self) -> dict:
        return {"trainer": "command", "template": self.template, "outcome_file": self.outcome_file,
                "outcome_key": self.outcome_key}


def check_template(template: str) -> list[str]:
    """The template's words; GatekitError when it cannot be split, names an unknown field, or
    lacks ``{checkpoint}`` (or ``{run}`` and ``{step}``) or ``{out}``."""
    import string

    if not isinstance(template, str) or not template.strip():
        raise GatekitError("--student-cmd must be a command, e.g. 'python distill.py --teacher {checkpoint} "
                           "--seed {seed} --epochs {epochs} --out {out}'")
    try:
        words = shlex.split(template)
    except ValueError as e:
        raise GatekitError(f"--student-cmd: cannot split {template!r} ({e})") from None
    used = set()
    for w in words:
        try:
            for _, name, spec, conv in string.Formatter().parse(w):
                if name is not None:
                    if name not in FIELDS or spec or conv:
                        raise GatekitError(f"--student-cmd: unknown field {{{name}}}; use {', '.join('{' + f + '}' for f in FIELDS)}")
                    used.add(name)
        except ValueError as e:
            raise GatekitError(f"--student-cmd: {e} in {w!r} (write a literal brace as {{{{ or }}}})") from None
    if "out" not in used or not ({"checkpoint"} <= used or {"run", "step"} <= used):
        raise GatekitError(f"--student-cmd {template!r} must use {{checkpoint}} (or {{run}} and {{step}}) and {{out}}")
    return words


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


@dataclasses.dataclass(frozen=True)
class ReplayTrainer:
    """Outcomes already measured: ``outcomes[(step, seed, epochs)]`` (seed: the race's seed index).
    A missing entry is a failed student. :func:`from_curves` builds one from the dataset's
    per-epoch student curves."""

    outcomes: Mapping[tuple[int, int, int], float]

    def train(self, checkpoint: str, seed: int, epochs: int, out=None) -> float:
        step = int(checkpoint.rpartition("@")[2])
        if (step, seed, epochs) not in self.outcomes:
            raise GatekitError(f"{checkpoint}: no recorded student with seed index {seed} after {epochs} epochs")
        return outcome_number(self.outcomes[(step, seed, epochs)], checkpoint)

    def describe(self) -> dict:
        return {"trainer": "replay", "measurements": len(self.outcomes)}

    @classmethod
    def from_curves(cls, steps, student, seeds=None) -> "ReplayTrainer":
        """From ``student`` [C, S, E]: seed ``seeds[k]``'s outcome after each epoch at checkpoint
        ``steps[c]`` (seed index k reads dataset seed ``seeds[k]``; all by default). NaN: failed."""
        import numpy as np

        student = np.asarray(student, dtype=float)
        seeds = list(range(student.shape[1])) if seeds is None else list(seeds)
        return cls({(int(s), k, e + 1): float(student[c, j, e]) for c, s in enumerate(steps)
                    for k, j in enumerate(seeds) for e in range(student.shape[2]) if np.isfinite(student[c, j, e])})


def builtin_trainer(run, **settings):
    """This project's trainer (``gatekit-train``), through the ``gatekit.trainers`` entry point:
    it distills the student ``settings`` describe (student_epochs, depth, width, sets, outcome)
    from a run it trained. GatekitError when it is not installed or cannot rebuild the run."""
    from importlib import metadata

    eps = [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == "gatekit-train"]
    if not eps:
        raise GatekitError("the built-in trainer is not installed (pip install the gatekit repository with its "
                           "training package); race with your own trainer instead: --student-cmd '...'")
    return eps[0].load()(run, **settings)

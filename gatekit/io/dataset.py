"""The gate benchmark as a dataset (``gatekit-benchmark/1``): one ``.npz`` per task, no pickle.

A benchmark directory holds ``{task}.npz`` files; each is the whole record of one task group of
the grid (configs x teacher seeds, ``C`` checkpoints per teacher, ``S`` student seeds, ``E``
student epochs), so that a rule is scored by replaying it on arrays, without a checkpoint. The
layout (``T`` teachers, ``N`` teacher epochs, ``M`` columns, ``P`` probe rows, ``R <= P``
representation rows, ``a`` action dims, ``d`` representation dims):

============================  =====================  ==================================================
array                         shape, dtype           what
============================  =====================  ==================================================
``meta``                      () str                 JSON: format, task, env, outcome, budgets, provenance
``config``                    [T] str                the teacher's config name (``base``, ``w256``, ...)
``teacher_seed``              [T] int64              its seed
``epoch_step``                [T, N] int64           env steps of every teacher checkpoint (one per epoch)
``epoch_seconds``             [T, N] float32         wall seconds of each teacher epoch (eval included)
``columns``                   [M] str                names of ``values``' last axis
``values``                    [T, N, M] float32      every score-table statistic and ``eval_*`` column
``checkpoint``                [T, C] int64           epoch index of each benchmarked checkpoint
``teacher_outcome``           [T, C] float32         the teacher itself, measured like its students
``student``                   [T, C, S, E] float32   each student seed's outcome after every epoch
``student_seconds``           [T, C, S, E] float32   wall seconds of each student epoch
``baseline``                  [S, E] float32         the no-teacher students (same budget), per epoch
``baseline_seconds``          [S, E] float32         their epoch seconds
``probe_obs`` / ``_action``   [P, .] float32         the task's fixed probe (shared by every teacher)
``probe_goal``                [P, .] float32
``teacher_mu``                [T, C, P, a] float16   policy mean on the probe
``teacher_log_std``           [T, C, P, a] float16   policy log-std on the probe
``teacher_phi``               [T, C, R, d] float16   phi(s, a) on the first R probe rows
``teacher_psi``               [T, C, R, d] float16   psi(g) on the first R probe rows
============================  =====================  ==================================================

Missing values are NaN (never a silent zero). :func:`read_benchmark` returns one
:class:`BenchTask` per file; :func:`write_benchmark_task` writes one atomically. The reader
checks every shape against the others before anything is used, and bounds memory by the file
(:func:`gatekit.io.npz.load_arrays`).

A task is made in **parts** (``gatekit-benchmark-part/1``, :func:`write_benchmark_part`), each a
subset of the arrays above checked the same way: one per teacher (every ``T``-axis array with
``T = 1``, and ``columns``), the no-teacher ``baseline`` and the task's ``probe``. A part is
written as soon as its runs finish, so a task that outlives one machine resumes from its parts;
:func:`merge_benchmark_parts` joins them into the task's arrays once every part is there.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

import numpy as np

from gatekit.errors import GatekitError
from gatekit.io.files import PathLike, atomic_write, to_jsonable
from gatekit.io.npz import load_arrays

BENCHMARK_FORMAT = "gatekit-benchmark/1"
PART_FORMAT = "gatekit-benchmark-part/1"

_SHAPES = {  # array -> its axes (letters shared across arrays must agree)
    "config": "T", "teacher_seed": "T", "epoch_step": "TN", "epoch_seconds": "TN", "columns": "M",
    "values": "TNM", "checkpoint": "TC", "teacher_outcome": "TC", "student": "TCSE", "student_seconds": "TCSE",
    "baseline": "SE", "baseline_seconds": "SE", "probe_obs": "Po", "probe_action": "Pa", "probe_goal": "Pg",
    "teacher_mu": "TCPa", "teacher_log_std": "TCPa", "teacher_phi": "TCRd", "teacher_psi": "TCRd",
    "derived_columns": "K", "derived": "TCK",
}
_OPTIONAL = ("teacher_mu", "teacher_log_std", "teacher_phi", "teacher_psi", "probe_obs", "probe_action", "probe_goal",
             "derived_columns", "derived")
_PARTS = {  # part kind -> the arrays it must hold (a teacher part may also hold its probe outputs)
    "teacher": ("config", "teacher_seed", "epoch_step", "epoch_seconds", "columns", "values", "checkpoint",
                "teacher_outcome", "student", "student_seconds"),
    "baseline": ("baseline", "baseline_seconds"),
    "probe": ("probe_obs", "probe_action", "probe_goal"),
}
_TEACHER_AXIS = [k for k, axes in _SHAPES.items() if axes.startswith("T")]
_KINDS = {"config": "U", "columns": "U", "derived_columns": "U", "teacher_seed": "iu", "epoch_step": "iu",
          "checkpoint": "iu"}
"""Each array's dtype kinds (the rest: numbers): a seed, a step or an index is an integer, a name a string."""
MAX_DATASET_MB = 1024
"""The most a benchmark directory may inflate to, all its files together, in MiB
(``GATEKIT_MAX_DATASET_MB`` raises it; the committed dataset is about 6)."""


def max_dataset_bytes() -> int:
    from gatekit.io.npz import mib_from_env

    return mib_from_env("GATEKIT_MAX_DATASET_MB", MAX_DATASET_MB)


@dataclasses.dataclass(frozen=True)
class BenchTask:
    """One task group of the benchmark: its arrays (module docstring) and its metadata."""

    name: str
    meta: dict
    arrays: dict[str, np.ndarray]

    def __getattr__(self, key: str) -> Any:  # task.student, task.values, ...
        arrays = self.__dict__.get("arrays", {})
        if key in arrays:
            return arrays[key]
        raise AttributeError(key)

    @property
    def teachers(self) -> list[tuple[str, int]]:
        """(config, teacher seed) of each teacher, in array order."""
        return [(str(c), int(s)) for c, s in zip(self.arrays["config"], self.arrays["teacher_seed"])]

    def column(self, name: str) -> np.ndarray:
        """[T, N] values of one column at every teacher epoch."""
        names = [str(c) for c in self.arrays["columns"]]
        if name not in names:
            raise GatekitError(f"benchmark task {self.name!r}: no column {name!r} (has {', '.join(names)})")
        return self.arrays["values"][:, :, names.index(name)]

    def at_checkpoints(self, x: np.ndarray) -> np.ndarray:
        """[T, N, ...] per-epoch values -> [T, C, ...] at the benchmarked checkpoints."""
        return np.take_along_axis(x, self.arrays["checkpoint"].reshape(self.arrays["checkpoint"].shape
                                                                       + (1,) * (x.ndim - 2)), axis=1)

    @property
    def checkpoint_step(self) -> np.ndarray:
        """[T, C] env steps of the benchmarked checkpoints."""
        return self.at_checkpoints(self.arrays["epoch_step"])

    @property
    def fraction(self) -> np.ndarray:
        """[T, C] each checkpoint's share of its teacher's budget (its final epoch's step)."""
        return self.checkpoint_step / self.arrays["epoch_step"][:, -1:]


def _check(arrays: dict[str, np.ndarray], where: str, required=None, fmt: str = BENCHMARK_FORMAT) -> None:
    if required is None:
        required = [k for k in _SHAPES if k not in _OPTIONAL]
    missing = [k for k in required if k not in arrays]
    if missing:
        raise GatekitError(f"{where}: missing array(s) {', '.join(missing)} ({fmt})")
    unknown = sorted(set(arrays) - set(_SHAPES))
    if fmt == PART_FORMAT and unknown:
        raise GatekitError(f"{where}: unknown array(s) {', '.join(unknown)} ({fmt})")
    sizes: dict[str, tuple[int, str]] = {}
    for key, axes in _SHAPES.items():
        if key not in arrays:
            continue
        a = arrays[key]
        if a.ndim != len(axes):
            raise GatekitError(f"{where}: {key} has shape {a.shape}; expected axes {'/'.join(axes)}")
        for letter, n in zip(axes, a.shape):
            if letter in sizes and sizes[letter][0] != n:
                raise GatekitError(f"{where}: {key} has {n} along {letter} but {sizes[letter][1]} has "
                                   f"{sizes[letter][0]}")
            sizes.setdefault(letter, (n, key))
        want = _KINDS.get(key, "iuf")
        if a.dtype.kind not in want:
            kind = "numbers" if "f" in want else "strings" if want == "U" else "integers"
            raise GatekitError(f"{where}: {key} has dtype {a.dtype}; expected {kind}")
        if a.dtype.kind == "f" and np.isinf(a).any():
            raise GatekitError(f"{where}: {key} holds Infinity; a missing value is NaN, every other one finite")
    if "epoch_step" in arrays:
        e = arrays["epoch_step"]
        if e.size and (e.min() <= 0 or np.any(np.diff(e, axis=1) <= 0)):
            raise GatekitError(f"{where}: epoch_step must be positive env steps increasing along each teacher's epochs")
    if "checkpoint" not in arrays:
        return
    n = arrays["epoch_step"].shape[1]
    c = arrays["checkpoint"]
    if c.size and (c.min() < 0 or c.max() >= n or np.any(np.diff(c, axis=1) <= 0)):
        raise GatekitError(f"{where}: checkpoint indices must increase within 0..{n - 1}")


def _meta_and_arrays(path: pathlib.Path, what: str) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, the other arrays) of a benchmark ``.npz``; GatekitError naming the file when it is
    missing, unreadable, or its ``meta`` is not a JSON object."""
    if not path.is_file():
        raise GatekitError(f"{path}: no such {what}")
    arrays = load_arrays(path, what)
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except (KeyError, ValueError, RecursionError):
        raise GatekitError(f"{path}: no readable 'meta' (a JSON string, not nested too deeply) in the {what}") from None
    if not isinstance(meta, dict):
        raise GatekitError(f"{path}: its 'meta' is {type(meta).__name__}, not a JSON object")
    return meta, arrays


def read_benchmark_task(path: PathLike) -> BenchTask:
    """One ``{task}.npz`` of a benchmark directory, checked (GatekitError naming the file)."""
    path = pathlib.Path(path)
    meta, arrays = _meta_and_arrays(path, "benchmark file")
    if meta.get("format") != BENCHMARK_FORMAT:
        raise GatekitError(f"{path}: format {meta.get('format')!r}, "
                           f"expected {BENCHMARK_FORMAT!r}")
    _check(arrays, str(path))
    return BenchTask(str(meta.get("task", path.stem)), meta, arrays)


def _inflated(path: pathlib.Path) -> int:
    """The bytes a task file's members declare (0 when it is not a readable zip: its own read names it)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return sum(i.file_size for i in z.infolist())
    except Exception:  # noqa: BLE001 - any damage is reported when the file itself is read
        return 0


def read_benchmark(path: PathLike) -> dict[str, BenchTask]:
    """Every task of a benchmark directory (``*.npz``, by name), or the one task of a file."""
    path = pathlib.Path(path)
    if path.is_file():
        t = read_benchmark_task(path)
        return {t.name: t}
    if not path.is_dir():
        raise GatekitError(f"{path}: no benchmark directory or file")
    tasks = {}
    files = sorted(path.glob("*.npz"))
    total, cap = sum(_inflated(f) for f in files), max_dataset_bytes()
    if total > cap:  # before any file is inflated: the per-file cap alone let 12 valid files take 2.6 GB
        raise GatekitError(f"{path}: its {len(files)} task files inflate to {total:,} bytes together, more than gatekit "
                           f"reads from one benchmark ({cap / 2**20:g} MiB; GATEKIT_MAX_DATASET_MB raises the cap)")
    for f in files:
        t = read_benchmark_task(f)
        if t.name in tasks:
            raise GatekitError(f"{f}: task {t.name!r} is also in another file of {path}")
        tasks[t.name] = t
    if not tasks:
        raise GatekitError(f"{path}: no benchmark task files (*.npz)")
    return tasks


def write_benchmark_task(path: PathLike, meta: dict, arrays: dict[str, Any]) -> pathlib.Path:
    """Writes one task's arrays (checked as the reader checks them) atomically, compressed."""
    path = pathlib.Path(path)
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    _check(arrays, str(path))
    meta = {"format": BENCHMARK_FORMAT, **meta}
    text = np.array(json.dumps(to_jsonable(meta), sort_keys=True))
    atomic_write(path, lambda f: np.savez_compressed(f, meta=text, **arrays), binary=True)
    return path


def write_benchmark_part(path: PathLike, kind: str, meta: dict, arrays: dict[str, Any]) -> pathlib.Path:
    """Writes one part of a task (module docstring: ``kind`` is ``teacher``, ``baseline`` or
    ``probe``), checked as the task file is, atomically."""
    if kind not in _PARTS:
        raise GatekitError(f"{path}: unknown part kind {kind!r} (one of {', '.join(_PARTS)})")
    path = pathlib.Path(path)
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    _check(arrays, str(path), _PARTS[kind], PART_FORMAT)
    if kind == "teacher" and len(arrays["config"]) != 1:
        raise GatekitError(f"{path}: a teacher part holds one teacher, got {len(arrays['config'])}")
    text = np.array(json.dumps(to_jsonable({"format": PART_FORMAT, "kind": kind, **meta}), sort_keys=True))
    atomic_write(path, lambda f: np.savez_compressed(f, meta=text, **arrays), binary=True)
    return path


def read_benchmark_part(path: PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) of one part, checked (GatekitError naming the file)."""
    path = pathlib.Path(path)
    meta, arrays = _meta_and_arrays(path, "benchmark part")
    if meta.get("format") != PART_FORMAT or meta.get("kind") not in _PARTS:
        raise GatekitError(f"{path}: not a {PART_FORMAT!r} file of a known kind")
    _check(arrays, str(path), _PARTS[meta["kind"]], PART_FORMAT)
    if meta["kind"] == "teacher" and len(arrays["config"]) != 1:
        raise GatekitError(f"{path}: a teacher part holds one teacher, got {len(arrays['config'])}")
    return meta, arrays


def merge_benchmark_parts(teachers: list[dict[str, np.ndarray]], baseline: dict[str, np.ndarray],
                          probe: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """A task's arrays from its parts' arrays (teachers in array order). Parts that disagree on
    ``columns`` or on the shape of any teacher array are refused (GatekitError)."""
    if not teachers:
        raise GatekitError("no teacher parts to merge")
    first = teachers[0]
    for k, t in enumerate(teachers[1:], 1):
        if set(t) != set(first):
            raise GatekitError(f"teacher part {k} holds {sorted(t)}, part 0 holds {sorted(first)}")
        if not np.array_equal(t["columns"], first["columns"]):
            raise GatekitError(f"teacher part {k} ({t['config'][0]}, seed {t['teacher_seed'][0]}) has other columns "
                               "than part 0")
    try:
        out = {k: np.concatenate([t[k] for t in teachers]) for k in first if k in _TEACHER_AXIS}
    except ValueError as e:
        raise GatekitError(f"teacher parts disagree on a shape: {e}") from None
    out["columns"] = first["columns"]
    out.update(baseline)
    out.update(probe or {})
    _check(out, "merged parts")
    return out

"""The ``gatekit-run/1`` run format: reading runs and checkpoints (Orbax + JSON).

A run directory::

    RUN_DIR/
      run.json               {"format": "gatekit-run/1", "family": "crl", "net": {...}, ...}
      probe.npz              optional shared probe: obs, action, goal, traj_id
      checkpoints/<step>/    one Orbax CheckpointManager step per epoch (step = env steps)
          params             pytree {"actor": ..., "sa_encoder": ..., "goal_encoder": ...}
          meta               JSON: step, epoch, env_steps, wall_time, train / eval metrics, gate
          sample             arrays from that epoch's own rollouts: obs, action, goal, future_goal

A checkpoint counts only when Orbax has finalized it (atomic rename, ``commit_success.txt``)
and its three items are present. Anything else is reported as a :class:`Problem` and skipped.
No pickle: Orbax for arrays, JSON for metadata (the writer is :mod:`gatekit.io.writer`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import pathlib
import threading
from typing import Any, Iterable, Mapping

import numpy as np

from gatekit.errors import GatekitError, Problem
from gatekit.io.files import PathLike, _atomic_write_text, read_text, to_jsonable

FORMAT = "gatekit-run/1"
ITEMS = ("params", "meta", "sample")
RUN_JSON = "run.json"
PROBE_NPZ = "probe.npz"
CHECKPOINT_DIR = "checkpoints"
REQUIRED_RUN_KEYS = ("format", "family", "net")


ORBAX_LOCK = threading.RLock()
"""Held around every Orbax call (restores here, saves in :mod:`gatekit.io.writer`): Orbax is not
safe to drive from several threads at once, and ``training.many.run_jobs`` trains runs in threads."""


def _ocp():
    # Orbax pulls in JAX and TensorStore: import on first use so `import gatekit` stays light.
    import orbax.checkpoint as ocp

    return ocp

@dataclasses.dataclass(frozen=True)
class Run:
    """A run directory with a valid ``run.json``."""

    path: pathlib.Path
    config: dict

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def family(self) -> str:
        return self.config["family"]

    @property
    def net(self) -> dict:
        return self.config["net"]

    @property
    def checkpoint_dir(self) -> pathlib.Path:
        return self.path / CHECKPOINT_DIR

    @property
    def tau(self) -> float:
        """The InfoNCE temperature the run trained with (``train.tau`` in run.json; 1 when not
        recorded, as for imported runs): the temperature its InfoNCE statistics use."""
        train = self.config.get("train")
        tau = train.get("tau", 1.0) if isinstance(train, Mapping) else 1.0
        if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not np.isfinite(tau) or tau <= 0:
            raise GatekitError(f"{self.path / RUN_JSON}: train.tau is {tau!r}, not a positive number")
        return float(tau)


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """One restored checkpoint: host NumPy arrays and JSON metadata."""

    run: Run
    step: int
    params: Any
    meta: dict
    sample: dict[str, np.ndarray]

    @property
    def path(self) -> pathlib.Path:
        return self.run.checkpoint_dir / str(self.step)


def validate_run_config(config: Mapping, *, source: str = RUN_JSON) -> dict:
    """Checks the keys every ``run.json`` must have; returns a plain dict copy."""
    if not isinstance(config, Mapping):
        raise GatekitError(f"{source}: expected a JSON object, found {type(config).__name__}")
    missing = [k for k in REQUIRED_RUN_KEYS if k not in config]
    if missing:
        raise GatekitError(f"{source}: missing key(s) {', '.join(missing)}")
    if config["format"] != FORMAT:
        raise GatekitError(
            f"{source}: format is {config['format']!r}; this gatekit reads {FORMAT!r}"
        )
    if not isinstance(config["net"], Mapping):
        raise GatekitError(f"{source}: 'net' must be an object")
    return json.loads(json.dumps(to_jsonable(config)))


def check_orbax_path(path: PathLike) -> None:
    """GatekitError when Orbax cannot read or write checkpoints at ``path``: its storage layer
    (tensorstore) fails under a folder whose path holds a backslash (its checkpoints then look
    damaged) or bytes that are not UTF-8 (a cryptic pybind11 cast error), so such a run is
    refused by name, before any work."""
    full = str(pathlib.Path(path).absolute())
    if "\\" in full:
        raise GatekitError(f"{path}: its path holds a backslash ('\\'), under which Orbax cannot read or write "
                           f"checkpoints; rename or move the folder")
    try:
        full.encode("utf-8")
    except UnicodeEncodeError:
        raise GatekitError(f"{ascii(full)}: its path is not valid UTF-8 (bytes the file system allows but Orbax cannot "
                           f"read or write checkpoints under); rename or move the folder") from None


def read_run(path: PathLike) -> Run:
    """Reads and validates ``RUN_DIR/run.json``. Raises GatekitError naming the file."""
    path = pathlib.Path(path)
    run_json = path / RUN_JSON
    if not path.exists():
        raise GatekitError(f"{path}: no such run directory")
    check_orbax_path(path)
    if not path.is_dir():
        raise GatekitError(f"{path}: not a directory")
    if not run_json.is_file():
        raise GatekitError(f"{run_json}: missing (not a gatekit run directory)")
    text = read_text(run_json, hint="; check its permissions")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise GatekitError(f"{run_json}: not valid JSON ({e})") from None
    except RecursionError:
        raise GatekitError(f"{run_json}: not a run config (JSON nested too deeply)") from None
    try:
        checked = validate_run_config(config, source=str(run_json))
    except RecursionError:
        raise GatekitError(f"{run_json}: not a run config (nested too deeply)") from None
    return Run(path=path.resolve(), config=checked)


def write_run_json(run_dir: PathLike, config: Mapping) -> Run:
    """Writes ``run.json`` atomically (``format`` is filled in when absent)."""
    run_dir = pathlib.Path(run_dir)
    config = {"format": FORMAT, **to_jsonable(dict(config))}
    config = validate_run_config(config, source=str(run_dir / RUN_JSON))
    _atomic_write_text(run_dir / RUN_JSON, json.dumps(config, indent=2, sort_keys=True) + "\n")
    return Run(path=run_dir.resolve(), config=config)


def foreign_hint(p: pathlib.Path) -> str:
    """What a folder that is not a gatekit run seems to hold, and the command that imports it."""
    try:
        pkl = sorted(p.glob("step_*.pkl"))[:3] or sorted(p.rglob("*.pkl"))[:3]
        orbax = [q for q in p.iterdir() if q.is_dir() and (q.name.isdigit() or (q / "_CHECKPOINT_METADATA").exists()
                                                             or (q / "_METADATA").exists())][:3]
    except OSError:
        return ""
    if pkl:
        return (f"; it holds pickles ({', '.join(q.name for q in pkl)}): if they are JaxGCRL checkpoints, "
                f"`gatekit import jaxgcrl {p} --out {str(p).rstrip('/')}_run` converts them (the architecture is read off them)")
    if orbax:
        return (f"; it holds Orbax-like step folders ({', '.join(q.name for q in orbax)}) without a run.json: write "
                f"them as a gatekit run (gatekit.io.RunWriter: params, meta and a probe sample per step; "
                f"README, 'Your own trainer'), or train with this project's trainer")
    return ""


def find_runs(paths: PathLike | Iterable[PathLike]) -> tuple[list[Run], list[Problem]]:
    """Resolves run directories, or directories holding runs (searched recursively).

    Returns the valid runs (sorted by path) and a Problem for each unusable run.json.
    A path that does not exist, or holds no run at all, raises GatekitError.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    runs: dict[pathlib.Path, Run] = {}
    problems: list[Problem] = []
    for p in map(pathlib.Path, paths):
        if not p.exists():
            raise GatekitError(f"{p}: no such file or directory")
        if not p.is_dir():
            raise GatekitError(f"{p}: not a directory (expected a run directory or a folder of runs)")
        candidates = [p / RUN_JSON] if (p / RUN_JSON).exists() else sorted(
            q for q in p.rglob(RUN_JSON) if CHECKPOINT_DIR not in q.relative_to(p).parts[:-1]
        )
        # A folder of checkpoints without run.json is a run whose run.json is missing.
        orphans = sorted(
            c.parent for c in ([p / CHECKPOINT_DIR] if (p / CHECKPOINT_DIR).is_dir() else p.rglob(CHECKPOINT_DIR))
            if c.is_dir() and not (c.parent / RUN_JSON).exists()
        )
        problems += [Problem(str(o / RUN_JSON), "missing; run skipped") for o in orphans]
        if not candidates and orphans:
            continue
        if not candidates:
            raise GatekitError(f"{p}: no run.json found (not a gatekit run or folder of runs){foreign_hint(p)}")
        for run_json in candidates:
            try:
                run = read_run(run_json.parent)
            except GatekitError as e:
                problems.append(Problem(str(run_json), f"{_strip_source(e, run_json)}; run skipped"))
                continue
            runs[run.path] = run
    return [runs[k] for k in sorted(runs)], problems


def _strip_source(err: Exception, source: pathlib.Path) -> str:
    msg = str(err)
    prefix = f"{source}: "
    return msg[len(prefix):] if msg.startswith(prefix) else msg


# --------------------------------------------------------------------------------------------
# Checkpoints: discovery and restore
# --------------------------------------------------------------------------------------------


ORBAX_TMP = ".orbax-checkpoint-tmp"
"""In the name of a step folder Orbax is still writing (renamed to ``<step>`` when finalized)."""


def list_checkpoints(run: Run) -> tuple[list[int], list[Problem]]:
    """Complete checkpoint steps of a run (ascending), and a Problem for each incomplete one.

    Reads folder names and marker files only (no Orbax import): a finalized local step is
    ``<step>/`` holding ``commit_success.txt`` and every item folder."""
    steps: list[int] = []
    problems: list[Problem] = []
    root = run.checkpoint_dir
    if not root.is_dir():
        return [], [Problem(str(root), "no checkpoints directory")]
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if ORBAX_TMP in entry.name:  # Orbax's atomic rename: <step>.orbax-checkpoint-tmp-<time> until finalized
            problems.append(Problem(str(entry), "unfinished save (Orbax temporary directory); skipped"))
            continue
        if not entry.is_dir() or not (entry.name.isascii() and entry.name.isdigit()):
            problems.append(Problem(str(entry), "not a checkpoint step directory; skipped"))
            continue
        if entry.name != str(int(entry.name)):  # 04000 beside 4000 would count step 4000 twice
            problems.append(Problem(str(entry), f"step folder name is not canonical (expected "
                                                f"{int(entry.name)}); skipped"))
            continue
        if entry.is_symlink():
            problems.append(Problem(str(entry), f"a symlink (to {entry.resolve()}), not this run's own step; "
                                                f"skipped"))
            continue
        if not (entry / "commit_success.txt").exists():
            problems.append(Problem(str(entry), "not finalized by Orbax (half-written); skipped"))
            continue
        missing = [item for item in ITEMS if not (entry / item).is_dir()]
        if missing:
            problems.append(Problem(str(entry), f"missing item(s) {', '.join(missing)}; skipped"))
            continue
        steps.append(int(entry.name))
    return sorted(steps), problems


@contextlib.contextmanager
def _quiet_orbax():
    """Orbax logs a warning through absl for every item it restores without a step-level
    metadata file; that is expected here (items are read one by one), so mute it."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@functools.lru_cache(maxsize=1)
def _checkpointers():
    ocp = _ocp()
    return ocp.PyTreeCheckpointer(), ocp.Checkpointer(ocp.JsonCheckpointHandler())


# Restore arguments depend only on the tree's structure, which is fixed within a run: reading
# the tree metadata once per (run, item) instead of once per checkpoint halves restore time.
_RESTORE_ARGS: dict[tuple[str, str], Any] = {}


def _restore_numpy_tree(path: pathlib.Path):
    ocp = _ocp()
    import jax

    ckptr = _checkpointers()[0]
    key = (str(path.parent.parent), path.name)
    with _quiet_orbax():
        if key in _RESTORE_ARGS:
            try:
                return ckptr.restore(path, args=ocp.args.PyTreeRestore(restore_args=_RESTORE_ARGS[key]))
            except Exception:
                pass  # structure changed within the run: fall back to this checkpoint's metadata
        md = ckptr.metadata(path)
        tree = getattr(getattr(md, "item_metadata", None), "tree", None)
        if tree is None:
            raise GatekitError(f"{path}: its Orbax metadata (_METADATA) is missing or damaged")
        restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
        out = ckptr.restore(path, args=ocp.args.PyTreeRestore(restore_args=restore_args))
        _RESTORE_ARGS[key] = restore_args
        return out


def _restore_json(path: pathlib.Path) -> dict:
    with _quiet_orbax():
        out = _checkpointers()[1].restore(path)
    if not isinstance(out, dict):
        raise GatekitError(f"{path}: meta is not a JSON object")
    return out


def load_checkpoint(run: Run, step: int, *, items: Iterable[str] = ITEMS) -> Checkpoint:
    """Restores one checkpoint as host NumPy arrays. Raises GatekitError naming the path."""
    items = tuple(items)
    path = run.checkpoint_dir / str(step)
    out: dict[str, Any] = {"params": None, "meta": {}, "sample": {}}
    for item in items:
        if item not in ITEMS:
            raise GatekitError(f"unknown checkpoint item {item!r}; expected one of {ITEMS}")
        try:
            with ORBAX_LOCK:
                out[item] = _restore_json(path / item) if item == "meta" else _restore_numpy_tree(path / item)
        except GatekitError:
            raise
        except Exception as e:  # Orbax/TensorStore raise many types for damaged files.
            raise GatekitError(f"{path / item}: unreadable ({type(e).__name__}: {e})") from None
    if "sample" in items:
        if not isinstance(out["sample"], Mapping):
            raise GatekitError(f"{path / 'sample'}: expected a dict of arrays")
        out["sample"] = {k: np.asarray(v) for k, v in out["sample"].items()}
    sums = out["meta"].get("checksums") if "meta" in items and isinstance(out["meta"], Mapping) else None
    if "meta" in items and (run.config.get("checksums") == CHECKSUMS or sums is not None) and \
            not (isinstance(sums, Mapping) and all(isinstance(sums.get(k), str) for k in RECORDED_SUMS)):
        raise GatekitError(f"{path / 'meta'}: its checksums are missing or incomplete (the writer records "
                           f"{', '.join(RECORDED_SUMS)} for every checkpoint): rewritten or damaged")
    _verify_checksums(path, out, items)
    return Checkpoint(run=run, step=int(step), params=out["params"], meta=out["meta"], sample=out["sample"])


def tree_checksum(tree) -> str:
    """SHA-256 of a pytree's content: each leaf's path, dtype, shape and bytes, in path order.

    Independent of how Orbax lays the arrays out on disk, so a checksum recorded at save time
    can be checked after any restore."""
    import hashlib

    h = hashlib.sha256()

    def walk(node, prefix):
        if isinstance(node, Mapping):
            for k in sorted(node, key=str):
                walk(node[k], f"{prefix}/{k}")
        elif isinstance(node, (list, tuple)):
            for i, v in enumerate(node):
                walk(v, f"{prefix}/{i}")
        else:
            arr = np.ascontiguousarray(np.asarray(node))
            h.update(f"{prefix}|{arr.dtype.str}|{arr.shape}|".encode())
            h.update(arr.tobytes())

    walk(tree, "")
    return h.hexdigest()


CHECKSUMS = "sha256"
"""``run.json``'s ``checksums`` value when every checkpoint of the run records its checksums."""
RECORDED_SUMS = ("params", "sample", "run", "meta")
"""What the writer records in every checkpoint's ``meta.checksums``: a meta with a partial or empty
mapping was edited (switching the checks off is refused, not obeyed)."""


def run_checksum(config: Mapping) -> str:
    """SHA-256 of a run.json's content (recorded in every checkpoint's meta at save time)."""
    import hashlib

    return hashlib.sha256(json.dumps(to_jsonable(config), sort_keys=True).encode()).hexdigest()


def run_changed_since(ckpt: "Checkpoint") -> bool:
    """True when the run's run.json differs from the one this checkpoint was written with."""
    sums = ckpt.meta.get("checksums") if isinstance(ckpt.meta, Mapping) else None
    return isinstance(sums, Mapping) and "run" in sums and sums["run"] != run_checksum(ckpt.run.config)


def meta_checksum(meta: Mapping) -> str:
    import hashlib

    body = {k: v for k, v in meta.items() if k != "checksums"}
    return hashlib.sha256(json.dumps(to_jsonable(body), sort_keys=True).encode()).hexdigest()


def _verify_checksums(path: pathlib.Path, out: dict, items: tuple[str, ...]) -> None:
    """Compares restored items with the checksums the writer recorded in meta (checkpoints
    written before checksums existed have none and load as before)."""
    sums = out["meta"].get("checksums") if isinstance(out["meta"], Mapping) else None
    if "meta" not in items or not isinstance(sums, Mapping):
        return
    if "meta" in sums and sums["meta"] != meta_checksum(out["meta"]):
        raise GatekitError(f"{path / 'meta'}: content does not match its checksum (damaged or edited)")
    for item in ("params", "sample"):
        if item in items and item in sums and sums[item] != tree_checksum(out[item]):
            raise GatekitError(f"{path / item}: content does not match its checksum (damaged data)")


def parse_checkpoint_spec(spec: str) -> tuple[pathlib.Path, int | None]:
    """``RUN_DIR`` or ``RUN_DIR@STEP`` (a checkpoint's address, as ``--teacher`` and ``--reference``
    take it) -> (path, step or None)."""
    path, sep, step = str(spec).rpartition("@")
    if not sep:
        return pathlib.Path(spec), None
    try:
        return pathlib.Path(path), int(step)
    except ValueError:
        raise GatekitError(f"{spec!r}: expected RUN_DIR or RUN_DIR@STEP with an integer STEP") from None

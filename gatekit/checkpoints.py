"""All of gatekit's file IO: the ``gatekit-run/1`` run format (Orbax + JSON) and score tables.

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
No pickle anywhere: Orbax for arrays, JSON for metadata, ``np.load(allow_pickle=False)``.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import io
import json
import logging
import math
import os
import pathlib
import tempfile
from typing import Any, Iterable, Mapping

import numpy as np

from gatekit.errors import GatekitError, Problem

FORMAT = "gatekit-run/1"
ITEMS = ("params", "meta", "sample")
RUN_JSON = "run.json"
PROBE_NPZ = "probe.npz"
CHECKPOINT_DIR = "checkpoints"
REQUIRED_RUN_KEYS = ("format", "family", "net")

PathLike = str | os.PathLike


def _ocp():
    # Orbax pulls in JAX and TensorStore: import on first use so `import gatekit` stays light.
    import orbax.checkpoint as ocp

    return ocp


# --------------------------------------------------------------------------------------------
# JSON helpers
# --------------------------------------------------------------------------------------------


def to_jsonable(obj: Any) -> Any:
    """Converts numpy / JAX scalars and arrays, tuples and paths into plain JSON values.

    Non-finite floats become ``None`` so the output is strict JSON.
    """
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (str, bool)) or obj is None:
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "shape") and hasattr(obj, "dtype"):  # numpy / JAX arrays
        arr = np.asarray(obj)
        return to_jsonable(arr.item() if arr.ndim == 0 else arr.tolist())
    raise TypeError(f"cannot write {type(obj).__name__} to JSON: {obj!r}")


def _atomic_write_text(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; written files follow the umask like open()
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------------


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


def read_run(path: PathLike) -> Run:
    """Reads and validates ``RUN_DIR/run.json``. Raises GatekitError naming the file."""
    path = pathlib.Path(path)
    run_json = path / RUN_JSON
    if not path.exists():
        raise GatekitError(f"{path}: no such run directory")
    if not path.is_dir():
        raise GatekitError(f"{path}: not a directory")
    if not run_json.is_file():
        raise GatekitError(f"{run_json}: missing (not a gatekit run directory)")
    try:
        text = run_json.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise GatekitError(f"{run_json}: cannot read ({e.strerror or e}); check its permissions") from None
    except UnicodeDecodeError as e:
        raise GatekitError(f"{run_json}: not UTF-8 text ({e})") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise GatekitError(f"{run_json}: not valid JSON ({e})") from None
    return Run(path=path.resolve(), config=validate_run_config(config, source=str(run_json)))


def write_run_json(run_dir: PathLike, config: Mapping) -> Run:
    """Writes ``run.json`` atomically (``format`` is filled in when absent)."""
    run_dir = pathlib.Path(run_dir)
    config = {"format": FORMAT, **to_jsonable(dict(config))}
    config = validate_run_config(config, source=str(run_dir / RUN_JSON))
    _atomic_write_text(run_dir / RUN_JSON, json.dumps(config, indent=2, sort_keys=True) + "\n")
    return Run(path=run_dir.resolve(), config=config)


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
            raise GatekitError(f"{p}: no run.json found (not a gatekit run or folder of runs)")
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


def list_checkpoints(run: Run) -> tuple[list[int], list[Problem]]:
    """Complete checkpoint steps of a run (ascending), and a Problem for each incomplete one."""
    ocp = _ocp()
    from etils import epath

    steps: list[int] = []
    problems: list[Problem] = []
    root = run.checkpoint_dir
    if not root.is_dir():
        return [], [Problem(str(root), "no checkpoints directory")]
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        ep = epath.Path(entry)
        if ocp.path.step.is_path_temporary(ep):
            problems.append(Problem(str(entry), "unfinished save (Orbax temporary directory); skipped"))
            continue
        if not entry.is_dir() or not entry.name.isdigit():
            problems.append(Problem(str(entry), "not a checkpoint step directory; skipped"))
            continue
        if not ocp.path.step.is_path_finalized(ep) or not (entry / "commit_success.txt").exists():
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
            out[item] = _restore_json(path / item) if item == "meta" else _restore_numpy_tree(path / item)
        except GatekitError:
            raise
        except Exception as e:  # Orbax/TensorStore raise many types for damaged files.
            raise GatekitError(f"{path / item}: unreadable ({type(e).__name__}: {e})") from None
    if "sample" in items:
        if not isinstance(out["sample"], Mapping):
            raise GatekitError(f"{path / 'sample'}: expected a dict of arrays")
        out["sample"] = {k: np.asarray(v) for k, v in out["sample"].items()}
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


def load_probe(run: Run) -> dict[str, np.ndarray] | None:
    """The run's shared ``probe.npz`` (obs, action, goal[, traj_id]), or None when absent."""
    path = run.path / PROBE_NPZ
    if not path.exists():
        return None
    return read_npz(path, required=("obs", "action", "goal"))


def read_npz(path: PathLike, *, required: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """Loads an ``.npz`` without pickle; checks the required keys and equal row counts."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise GatekitError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise GatekitError(f"{path}: cannot read ({e.strerror or e})") from None
    if magic != b"PK\x03\x04":
        raise GatekitError(f"{path}: not an .npz file (an .npz is a zip of .npy arrays: save one with numpy.savez)")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise GatekitError(f"{path}: holds object arrays, which need pickle; gatekit reads numeric arrays only") from None
        raise GatekitError(f"{path}: unreadable .npz ({e})") from None
    except (OSError, EOFError, KeyError) as e:
        raise GatekitError(f"{path}: damaged .npz ({type(e).__name__}: {e})") from None
    missing = [k for k in required if k not in data]
    if missing:
        raise GatekitError(f"{path}: missing array(s) {', '.join(missing)}")
    lengths = {k: len(v) for k, v in data.items() if np.ndim(v) > 0}
    if len(set(lengths.values())) > 1:
        raise GatekitError(f"{path}: arrays have different numbers of rows {lengths}")
    return data


def write_probe(run_dir: PathLike, *, obs, action, goal, traj_id=None) -> pathlib.Path:
    """Writes ``probe.npz`` (a shared evaluation set for every checkpoint of the run)."""
    path = pathlib.Path(run_dir) / PROBE_NPZ
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"obs": np.asarray(obs), "action": np.asarray(action), "goal": np.asarray(goal)}
    if traj_id is not None:
        arrays["traj_id"] = np.asarray(traj_id)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as f:
        np.savez(f, **arrays)
    os.replace(f.name, path)
    return path


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------


class RunWriter:
    """Writes a run in ``gatekit-run/1``: ``run.json`` plus one Orbax step per epoch.

    Any trainer can use it::

        writer = RunWriter("runs/teacher", config={"family": "crl", "net": {...}, "seed": 0})
        writer.save(step=env_steps, params=params, meta={"epoch": 1, ...}, sample={...})
        writer.close()

    Saves are finalized by Orbax's atomic rename, so a crash mid-save never leaves a step that
    looks complete. With ``resume=True`` an existing run is reopened (its ``run.json`` must
    describe the same network), and :meth:`latest` restores the newest complete checkpoint.
    """

    def __init__(
        self,
        run_dir: PathLike,
        *,
        config: Mapping,
        resume: bool = False,
        async_save: bool = True,
        max_to_keep: int | None = None,
        extra_items: tuple[str, ...] = (),
    ):
        ocp = _ocp()
        self.path = pathlib.Path(run_dir)
        existing = self.path / RUN_JSON
        if existing.exists():
            if not resume:
                raise GatekitError(f"{existing}: run already exists (pass resume=True to continue it)")
            old = read_run(self.path)
            new = validate_run_config({"format": FORMAT, **to_jsonable(dict(config))})
            if old.config.get("net") != new.get("net") or old.family != new["family"]:
                raise GatekitError(f"{existing}: resuming with a different network or family")
            self.run = old
        else:
            self.run = write_run_json(self.path, config)
        options = ocp.CheckpointManagerOptions(
            create=True,
            enable_async_checkpointing=async_save,
            max_to_keep=max_to_keep,
            cleanup_tmp_directories=True,
        )
        self.extra_items = tuple(extra_items)
        self._manager = ocp.CheckpointManager(
            self.run.checkpoint_dir.absolute(), item_names=ITEMS + self.extra_items, options=options
        )

    def save(
        self, step: int, *, params, meta: Mapping, sample: Mapping[str, Any], extra: Mapping[str, Any] | None = None
    ) -> None:
        """Saves params (any pytree of arrays), meta (JSON) and sample (dict of arrays).

        ``extra`` holds pytrees for the ``extra_items`` named at construction (for example a
        trainer's optimizer state, for exact resume); gatekit's reader ignores them.
        """
        ocp = _ocp()
        import jax

        extra = dict(extra or {})
        if set(extra) != set(self.extra_items):
            raise GatekitError(f"save: extra items {sorted(extra)} != declared {sorted(self.extra_items)}")
        params = jax.device_get(params)
        sample = {k: np.asarray(v) for k, v in jax.device_get(dict(sample)).items()}
        meta = to_jsonable({"step": int(step), **dict(meta)})
        meta["checksums"] = {"params": tree_checksum(params), "sample": tree_checksum(sample),
                             "run": run_checksum(self.run.config)}
        meta["checksums"]["meta"] = meta_checksum(meta)
        items = {
            "params": ocp.args.StandardSave(params),
            "meta": ocp.args.JsonSave(meta),
            "sample": ocp.args.StandardSave(sample),
            **{k: ocp.args.StandardSave(jax.device_get(v)) for k, v in extra.items()},
        }
        self._manager.save(int(step), args=ocp.args.Composite(**items))

    def restore_extra(self, step: int, name: str, target):
        """Restores an extra item into the structure (and dtypes) of ``target``."""
        ocp = _ocp()
        path = self.run.checkpoint_dir / str(step) / name
        try:
            return self._manager.restore(int(step), args=ocp.args.Composite(**{name: ocp.args.StandardRestore(target)}))[name]
        except Exception as e:
            raise GatekitError(f"{path}: cannot restore ({type(e).__name__}: {e})") from None

    def delete(self, step: int) -> None:
        """Removes one step (e.g. a damaged step after the one a resume continues from)."""
        self._manager.wait_until_finished()
        self._manager.delete(int(step))

    def steps(self) -> list[int]:
        self._manager.wait_until_finished()
        return list_checkpoints(self.run)[0]

    def latest(self) -> Checkpoint | None:
        """The newest complete checkpoint (restored as NumPy), or None for a fresh run."""
        steps = self.steps()
        return load_checkpoint(self.run, steps[-1]) if steps else None

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()

    def __enter__(self) -> "RunWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
# Score tables (CSV / JSON)
# --------------------------------------------------------------------------------------------


def write_table(rows: list[dict], path: PathLike, columns: list[str] | None = None) -> pathlib.Path:
    """Writes rows as CSV or JSON (by suffix: ``.csv`` / ``.json``)."""
    path = pathlib.Path(path)
    text = table_text(rows, _table_kind(path), columns)
    _atomic_write_text(path, text)
    return path


def table_text(rows: list[dict], kind: str, columns: list[str] | None = None) -> str:
    """Rows as CSV or JSON text (``kind`` in {"csv", "json"})."""
    columns = columns or _columns(rows)
    if kind == "json":
        return json.dumps([{c: to_jsonable(r.get(c)) for c in columns} for r in rows], indent=1) + "\n"
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({c: _csv_cell(r.get(c)) for c in columns})
    return buf.getvalue()


def read_table(path: PathLike) -> list[dict]:
    """Reads a CSV or JSON table into a list of row dicts; numeric cells become floats."""
    path = pathlib.Path(path)
    kind = _table_kind(path)
    if not path.is_file():
        raise GatekitError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise GatekitError(f"{path}: cannot read ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise GatekitError(f"{path}: not UTF-8 text ({e})") from None
    if text.startswith("\ufeff"):
        text = text[1:]  # a UTF-8 byte-order mark (Excel) is not part of the first column's name
    if kind == "json":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as e:
            raise GatekitError(f"{path}: not valid JSON ({e})") from None
        if isinstance(rows, dict) and "rows" in rows:
            rows = rows["rows"]
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise GatekitError(f"{path}: expected a JSON list of objects (one per row)")
        return rows
    records = list(csv.reader(io.StringIO(text)))
    if not records or not any(records[0]):
        raise GatekitError(f"{path}: empty CSV (no header)")
    header = [h.strip() for h in records[0]]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise GatekitError(f"{path}: duplicate column name(s) {dupes}")
    if any(not h for h in header):
        raise GatekitError(f"{path}: empty column name in the header (column {header.index('') + 1})")
    rows = []
    for i, rec in enumerate(records[1:], start=2):
        if not rec:
            continue  # blank line
        if len(rec) != len(header):
            raise GatekitError(f"{path}: line {i} has {len(rec)} cells but the header has {len(header)} columns")
        rows.append({k: _parse_cell(v) for k, v in zip(header, rec)})
    return rows


def _table_kind(path: pathlib.Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise GatekitError(f"{path}: unknown table type {suffix!r} (use .csv or .json)")
    return suffix[1:]


def _columns(rows: list[dict]) -> list[str]:
    cols: dict[str, None] = {}
    for r in rows:
        cols.update(dict.fromkeys(r))
    return list(cols)


def _csv_cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        return repr(float(v)) if math.isfinite(v) else "nan"
    return v


def _parse_cell(v: str | None) -> Any:
    if v is None or v == "":
        return None
    try:
        f = float(v)
    except ValueError:
        return v
    return int(f) if f.is_integer() and v.lstrip("-").isdigit() else f


# --------------------------------------------------------------------------------------------
# Gate files (gatekit-gate/1) and presets
# --------------------------------------------------------------------------------------------

PRESET_DIR = pathlib.Path(__file__).parent / "presets"


def sha256_file(path: PathLike) -> str:
    """Hex SHA-256 of a file's bytes (what a gate records about the table it was fitted on)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def preset_names() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in PRESET_DIR.glob("*.json")))


def read_gate(spec: PathLike):
    """A :class:`gatekit.gate.Gate` from a ``gatekit-gate/1`` JSON file or a preset name
    (``paper``, ``pointmaze``). Raises GatekitError naming the file for anything malformed."""
    from gatekit.gate import Gate

    path = pathlib.Path(spec)
    if not path.exists() and str(spec) in preset_names():
        path = PRESET_DIR / f"{spec}.json"
    if not path.is_file():
        raise GatekitError(
            f"{spec}: no such gate file or preset (presets: {', '.join(preset_names())}; "
            f"make one with `gatekit fit ... --save gate.json`)"
        )
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise GatekitError(f"{path}: cannot read ({e.strerror or e})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GatekitError(f"{path}: not a gate file (not valid JSON: {e})") from None
    return Gate.from_dict(doc, source=str(path))


def write_gate(gate, path: PathLike) -> pathlib.Path:
    """Writes a Gate as indented JSON (atomically)."""
    path = pathlib.Path(path)
    if path.is_dir():
        raise GatekitError(f"{path}: is a directory; give a file name for the gate (e.g. gate.json)")
    _atomic_write_text(path, json.dumps(to_jsonable(gate.to_dict()), indent=1) + "\n")
    return path


# --------------------------------------------------------------------------------------------
# JaxGCRL checkpoints: the one place gatekit reads a pickle, through an allow-list
# --------------------------------------------------------------------------------------------


def _np_reconstruct_array(fun, args, arr_state, aval_state):
    """Stands in for ``jax._src.array._reconstruct_array``: the same NumPy array, no device put."""
    value = fun(*args)
    value.__setstate__(arr_state)
    return value


def _plain_dtype(*args, **kwargs):
    dt = np.dtype(*args, **kwargs)
    if dt.hasobject:
        raise GatekitError("refused: an object dtype (arrays of Python objects need arbitrary unpickling)")
    return dt


def _as_dict(*args, **kwargs):
    return dict(*args, **kwargs)


def _checked_scalar(dtype, *args):
    if np.dtype(dtype).hasobject:
        raise GatekitError("refused: an object-dtype NumPy scalar")
    return np._core.multiarray.scalar(dtype, *args)


def _codecs_encode(obj, encoding="utf-8", errors="strict"):
    return obj.encode(encoding, errors) if isinstance(obj, str) else bytes(obj)


# (module, name) -> the callable used instead. Everything else is refused without being imported.
# Arrays pickled by NumPy 1 name ``numpy.core``, by NumPy 2 ``numpy._core``: both are allowed.
PICKLE_ALLOWED = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _plain_dtype,
    **{(mod, "_reconstruct"): np._core.multiarray._reconstruct
       for mod in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(mod, "scalar"): _checked_scalar for mod in ("numpy.core.multiarray", "numpy._core.multiarray")},
    ("jax._src.array", "_reconstruct_array"): _np_reconstruct_array,
    ("flax.core.frozen_dict", "FrozenDict"): _as_dict,
    ("collections", "OrderedDict"): _as_dict,
    ("_codecs", "encode"): _codecs_encode,
}


def read_restricted_pickle(path: PathLike) -> Any:
    """Loads a pickle of arrays and plain containers only (JaxGCRL's ``save_params`` files).

    A custom ``Unpickler.find_class`` allows exactly :data:`PICKLE_ALLOWED` (NumPy array and
    scalar reconstruction, JAX arrays mapped to NumPy, FrozenDict / OrderedDict mapped to dict);
    any other global (``os.system``, ``builtins.eval``, a class with a ``__reduce__`` payload) is
    refused with GatekitError before anything is imported or run.
    """
    import io as _io
    import pickle  # noqa: S403 - the only pickle use in gatekit; restricted below

    class Restricted(pickle.Unpickler):
        def find_class(self, module, name):
            fn = PICKLE_ALLOWED.get((module, name))
            if fn is None:
                raise GatekitError(f"{path}: refused to load {module}.{name} (only arrays and plain containers "
                                   f"are read from pickles)")
            return fn

    path = pathlib.Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise GatekitError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        return Restricted(_io.BytesIO(data)).load()
    except GatekitError:
        raise
    except Exception as e:  # noqa: BLE001 - truncated or foreign data
        raise GatekitError(f"{path}: not a readable JaxGCRL checkpoint ({type(e).__name__}: {e})") from None

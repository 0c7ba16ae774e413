"""Writing a ``gatekit-run/1`` run: run.json, then one atomic Orbax step per epoch."""

from __future__ import annotations

import os
import pathlib
from typing import Any, Mapping

import numpy as np

from gatekit import interrupts
from gatekit.errors import GatekitError

LOCK_FILE = ".writer.lock"
from gatekit.io.files import PathLike, open_own_file, to_jsonable
from gatekit.io.runs import (CHECKSUMS, FORMAT, ITEMS, ORBAX_LOCK, RUN_JSON, Checkpoint, _ocp, list_checkpoints, load_checkpoint,
                             meta_checksum, read_run, run_checksum, tree_checksum, validate_run_config,
                             write_run_json)


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
        from gatekit.io.runs import check_orbax_path

        check_orbax_path(run_dir)  # before anything is made
        ocp = _ocp()
        self.path = pathlib.Path(run_dir)
        self._lock = _lock_run(self.path)  # one writer per run, before anything is read or written
        try:
            self._open(config, resume, ocp, async_save, max_to_keep, extra_items)
        except BaseException:
            self.release()  # once: __del__ then finds nothing to close
            raise

    def _open(self, config, resume, ocp, async_save, max_to_keep, extra_items) -> None:
        from gatekit.io.logs import METRICS_JSONL

        log = self.path / METRICS_JSONL
        if log.exists() or log.is_symlink():  # checked before any epoch: a link or a FIFO there is refused
            os.close(open_own_file(log, os.O_WRONLY | os.O_APPEND, METRICS_JSONL))
        existing = self.path / RUN_JSON
        if existing.exists():
            if not resume:
                raise GatekitError(f"{existing}: run already exists: continue it with --resume (resume=True in Python) or write to another folder")
            old = read_run(self.path)
            new = validate_run_config({"format": FORMAT, **to_jsonable(dict(config))})
            if old.config.get("net") != new.get("net") or old.family != new["family"]:
                raise GatekitError(f"{existing}: resuming with a different network or family")
            self.run = old
        else:  # "checksums": every checkpoint of this run carries them; one without is refused on load
            self.run = write_run_json(self.path, {**dict(config), "checksums": CHECKSUMS})
        options = ocp.CheckpointManagerOptions(
            create=True,
            enable_async_checkpointing=async_save,
            max_to_keep=max_to_keep,
            cleanup_tmp_directories=True,
        )
        self.extra_items = tuple(extra_items)
        with ORBAX_LOCK:
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
        with ORBAX_LOCK, interrupts.deferred():  # a Ctrl-C lands after the save has started whole
            self._manager.save(int(step), args=ocp.args.Composite(**items))

    def restore_extra(self, step: int, name: str, target):
        """Restores an extra item into the structure (and dtypes) of ``target``."""
        ocp = _ocp()
        path = self.run.checkpoint_dir / str(step) / name
        try:
            with ORBAX_LOCK:
                return self._manager.restore(int(step), args=ocp.args.Composite(**{name: ocp.args.StandardRestore(target)}))[name]
        except Exception as e:
            raise GatekitError(f"{path}: cannot restore ({type(e).__name__}: {e})") from None

    def delete(self, step: int) -> None:
        """Removes one step (e.g. a damaged step after the one a resume continues from)."""
        with ORBAX_LOCK:
            self._manager.wait_until_finished()
            self._manager.delete(int(step))

    def steps(self) -> list[int]:
        with ORBAX_LOCK:
            self._manager.wait_until_finished()
        return list_checkpoints(self.run)[0]

    def latest(self) -> Checkpoint | None:
        """The newest complete checkpoint (restored as NumPy), or None for a fresh run."""
        steps = self.steps()
        return load_checkpoint(self.run, steps[-1]) if steps else None

    def close(self) -> None:
        try:
            with ORBAX_LOCK:
                self._manager.wait_until_finished()
                self._manager.close()
        finally:
            self.release()

    def abandon(self) -> None:
        """After a failure or a Ctrl-C: lets a save already under way finish (else Orbax's
        background thread is cut off at interpreter exit: that checkpoint is lost, and the exit
        sometimes hangs), then releases the lock. An error of that save is not raised over the
        one that ended the run."""
        try:
            with ORBAX_LOCK:
                self._manager.wait_until_finished()
        except Exception:
            pass
        finally:
            self.release()

    def release(self) -> None:
        """Releases the run's writer lock (``close`` does; after a failure, call this alone)."""
        if getattr(self, "_lock", None) is not None:
            os.close(self._lock)
            self._lock = None

    def __del__(self) -> None:
        self.release()

    def __enter__(self) -> "RunWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _lock_run(path: pathlib.Path) -> int:
    return lock_folder(path, LOCK_FILE, "run")


def lock_folder(path: pathlib.Path, name: str, what: str) -> int:
    """An exclusive OS lock on ``path/name`` (``flock``; a run's is ``.writer.lock``): held while the writer is open,
    released on close and by the OS when the process dies (even by kill -9), so a dead writer
    never blocks a resume. A second writer is refused at once, naming the process that holds it.
    Readers (scoring, watching) never take it."""
    import fcntl

    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GatekitError(f"{path}: cannot create the {what} folder ({e.strerror or e})") from None
    fd = open_own_file(path / name, os.O_RDWR | os.O_CREAT, "writer lock")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise GatekitError(f"{path}: another process (pid {holder}) is writing this {what}; wait for it to finish "
                           f"or stop it, then --resume") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd

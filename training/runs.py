"""Train or reuse: the one rule by which every sweep, calibration and check in ``training``
decides whether a run must be trained, so that rerunning one continues where it stopped."""

from __future__ import annotations

import pathlib
import shutil
from typing import Callable

from gatekit import io as gio
from gatekit.errors import GatekitError
from training.config import TrainConfig
from training.trainer import train


def run_finished(path, epochs: int) -> bool:
    """True when ``path`` holds a run whose newest complete checkpoint reached ``epochs``."""
    path = pathlib.Path(path)
    if not (path / gio.RUN_JSON).exists():
        return False
    run = gio.read_run(path)
    steps = gio.list_checkpoints(run)[0]
    return bool(steps) and int(gio.load_checkpoint(run, steps[-1], items=("meta",)).meta.get("epoch", 0)) >= epochs


def check_reusable(cfg: TrainConfig, path, *, clear_unfinished: bool) -> bool:
    """True when ``path`` holds a finished run of ``cfg`` (reuse it). A run of another config there
    is a GatekitError (never deleted: pick another output folder); an unfinished run of this
    config is removed when ``clear_unfinished`` (students are cheap to start again). A folder there
    that is not a run, a link or a file is refused, never deleted."""
    path = pathlib.Path(path)
    if (path / gio.RUN_JSON).exists():
        old = TrainConfig.from_dict(gio.read_run(path).config.get("train") or {})
        if old != cfg:
            diff = {k: (v, getattr(cfg, k)) for k, v in old.to_dict().items() if v != cfg.to_dict().get(k)}
            raise GatekitError(f"{path}: holds a run of another config {diff}; use another output folder")
    if run_finished(path, cfg.epochs):
        return True
    if clear_unfinished and (path.exists() or path.is_symlink()):
        if path.is_symlink() or not path.is_dir():
            raise GatekitError(f"{path}: is a link or a file, not a run folder; it is not replaced: use another output "
                               f"folder")
        if not (path / gio.RUN_JSON).is_file() and any(path.iterdir()):
            raise GatekitError(f"{path}: exists and is not a run ({gio.RUN_JSON} is missing); it is never deleted: "
                               f"move it or use another output folder")
        if (path / gio.RUN_JSON).is_file():  # an unfinished run of this config: started again
            shutil.rmtree(path)
    return False


def train_or_reuse(cfg: TrainConfig, path, *, teacher: str | None = None, resume: bool = False,
                   progress: Callable[[str], None] | None = None):
    """Trains ``cfg`` at ``path``, or reuses a finished run there *of the same config*.

    An unfinished run of the same config is continued (``resume=True``, for teachers, whose
    checkpoints are worth keeping) or started again (students are cheap). A run of another config
    at ``path`` is an error and is never deleted: pick another output folder. Returns ``path``.
    The one train-or-reuse rule of every sweep, calibration and check in ``training``
    (:func:`training.many.run_jobs` applies it to many runs at once).
    """
    path = pathlib.Path(path)
    if not check_reusable(cfg, path, clear_unfinished=not resume):
        train(cfg, path, teacher=teacher, progress=progress, resume=path.exists())
    return path

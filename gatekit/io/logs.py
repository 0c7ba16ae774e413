"""Training and scoring logs: a plain ``metrics.jsonl`` in every run folder, and TensorBoard
event files when asked for.

``metrics.jsonl``: one JSON object per saved checkpoint, appended as it is saved: ``step``,
``epoch``, ``env_steps``, ``wall_time`` and every statistic as ``train/NAME``, ``eval/NAME``,
``online/NAME`` (the online statistics a gate may use). After a kill and ``--resume`` a step can
appear twice (the later line wins, :func:`read_metrics`), and a line cut short by the kill is
skipped.

TensorBoard: :class:`TensorBoardLog` writes the same scalars with `tensorboardX
<https://github.com/lanpa/tensorboardX>`_ (``pip install "gatekit[log]"``; Brax installs it
too). Weights & Biases reads these event files (``wandb.tensorboard.patch(root_logdir=DIR)``
before training, or ``wandb sync --sync-tensorboard DIR`` after).
"""

from __future__ import annotations

import json
import os
import math
import pathlib
from typing import Any, Mapping

from gatekit.errors import GatekitError

METRICS_JSONL = "metrics.jsonl"


def flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Finite numbers of a nested record as ``{"group/name": value}`` (the scalars to log)."""
    out: dict[str, float] = {}
    for k, v in record.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, f"{name}/"))
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v)):
            out[name] = float(v)
    return out


def _strict(value):
    """JSON-ready: NumPy scalars as numbers, NaN / Inf as null (strict JSON, one line)."""
    if isinstance(value, Mapping):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def append_metrics(run_dir, record: Mapping[str, Any]) -> None:
    """Appends one checkpoint's record as a line of ``RUN/metrics.jsonl`` (flushed)."""
    from gatekit.io.files import open_own_file

    line = json.dumps(_strict(record), allow_nan=False)
    fd = open_own_file(pathlib.Path(run_dir) / METRICS_JSONL, os.O_WRONLY | os.O_APPEND | os.O_CREAT, METRICS_JSONL)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()


def read_metrics(run_dir) -> list[dict]:
    """The records of ``RUN/metrics.jsonl`` by step (the last line of a step wins; a torn,
    non-UTF-8 or too deeply nested line is skipped). GatekitError when the file is missing or is
    not a regular file (never followed through a link, never blocked on as a FIFO)."""
    import os
    import stat

    path = pathlib.Path(run_dir) / METRICS_JSONL
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise GatekitError(f"{path}: not a regular file (a link, a folder or a FIFO); gatekit reads only the one "
                           f"it wrote")
    if not path.is_file():
        raise GatekitError(f"{path}: no such file (runs trained before metrics.jsonl existed have none)")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        raise GatekitError(f"{path}: unreadable ({e.strerror or e})") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise GatekitError(f"{path}: not a regular file")
        data = f.read()
    by_step: dict[int, dict] = {}
    for raw in data.splitlines():
        try:  # a torn, non-UTF-8 or absurdly nested line is skipped, like a torn one
            rec = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError):
            continue
        if isinstance(rec, dict) and isinstance(rec.get("step"), int):
            by_step[rec["step"]] = rec
    return [by_step[s] for s in sorted(by_step)]


class TensorBoardLog:
    """Scalars to TensorBoard event files under ``logdir`` (tensorboardX's SummaryWriter)."""

    def __init__(self, logdir):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise GatekitError('TensorBoard logging needs tensorboardX: pip install "gatekit[log]"') from None
        self.logdir = pathlib.Path(logdir)
        try:
            self._writer = SummaryWriter(logdir=str(self.logdir), flush_secs=10)
        except OSError as e:
            raise GatekitError(f"{logdir}: cannot write TensorBoard logs there ({e})") from None

    def scalars(self, step: int, record: Mapping[str, Any]) -> None:
        """Every finite number of ``record`` (nested dicts become ``group/name`` tags) at ``step``."""
        for tag, value in flatten(record).items():
            self._writer.add_scalar(tag, value, global_step=int(step))

    def close(self) -> None:
        self._writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def tensorboard_dirs(logdir, run_paths) -> dict[str, pathlib.Path]:
    """Where :func:`scores_to_tensorboard` writes each run's scalars: ``logdir`` / the run's path
    relative to the runs' common folder. GatekitError when one of them is a run folder or lies
    inside one (``--tensorboard`` given as the runs' parent would write into the runs themselves)."""
    import os

    paths = sorted({str(p) for p in run_paths})
    common = os.path.commonpath(paths) if len(paths) > 1 else os.path.dirname(paths[0])
    dests = {p: pathlib.Path(logdir) / (os.path.relpath(p, common) if common else p).replace("..", "_") for p in paths}
    runs = [pathlib.Path(p).resolve() for p in paths]
    for dest in dests.values():
        d = dest.resolve()
        hit = next((r for r in runs if d == r or r in d.parents), None)
        if hit is not None:
            raise GatekitError(f"--tensorboard {logdir}: would write {dest} into the run {hit}; choose a folder "
                               f"outside the runs")
    return dests


def scores_to_tensorboard(rows, logdir) -> pathlib.Path:
    """A score table's rows as TensorBoard scalars: one sub-folder per run (its path relative
    to the runs' common folder), every numeric column as ``score/COLUMN`` at the row's step."""
    by_run: dict[str, list] = {}
    for r in rows:
        by_run.setdefault(str(r.get("run_path") or r.get("run") or "run"), []).append(r)
    skip = {"step", "seed", "epoch"}
    for path, dest in tensorboard_dirs(logdir, by_run).items():
        with TensorBoardLog(dest) as board:
            for r in by_run[path]:
                board.scalars(int(r["step"]), {"score": {k: v for k, v in r.items() if k not in skip}})
    return pathlib.Path(logdir)


def read_tensorboard(logdir) -> dict[str, list[tuple[int, float]]]:
    """The scalars in the event files under ``logdir``: ``{tag: [(step, value), ...]}``, read
    with tensorboardX's own Event protocol buffer (TFRecord framing: length, CRC, data, CRC)."""
    import struct

    from tensorboardX.proto import event_pb2

    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(pathlib.Path(logdir).rglob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos + 12 <= len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            body = data[pos + 12:pos + 12 + length]
            pos += 12 + length + 4
            if len(body) < length:
                break
            event = event_pb2.Event.FromString(body)
            for v in event.summary.value:
                out.setdefault(v.tag, []).append((int(event.step), float(v.simple_value)))
    return out

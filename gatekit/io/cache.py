"""The score cache: a run's scored rows, kept so that ``select``, ``plot``, ``report`` and
``score`` on a run already scored take well under a second instead of restoring and scoring every
checkpoint again.

One entry per run, content-addressed: the key hashes the run's ``run.json``, every complete
checkpoint's files (relative path, size and modification time, so a rewritten, damaged, new or
removed checkpoint changes it), the scoring settings (probe file and size, seed, reference and
its files), gatekit's version and the statistics it computes. A run with a new or changed
checkpoint is scored again as a whole: by default its retrospective columns (CKA / q_corr) are
against its *last* checkpoint, so a new checkpoint changes every row.

Where: ``$GATEKIT_SCORE_CACHE``, else ``$XDG_CACHE_HOME/gatekit/scores`` (default
``~/.cache/gatekit/scores``); ``GATEKIT_SCORE_CACHE=0`` (or ``off``) disables it, as does
``--no-cache`` / ``score(cache=False)``. Entries are small JSON files; delete the folder to clear
it. A cache that cannot be read or written is ignored (the run is simply scored).
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
from typing import Any, Mapping

ENV = "GATEKIT_SCORE_CACHE"
VERSION = 1
"""Bumped whenever the rows a run scores to could change for the same inputs."""


def folder(environ: Mapping[str, str] = os.environ) -> pathlib.Path | None:
    """The cache folder in use, or None when disabled."""
    value = environ.get(ENV, "").strip()
    if value.lower() in ("0", "off", "false", "no", "none"):
        return None
    if value:
        return pathlib.Path(value)
    home = environ.get("XDG_CACHE_HOME") or str(pathlib.Path.home() / ".cache")
    return pathlib.Path(home) / "gatekit" / "scores"


def fingerprint(path: pathlib.Path) -> list:
    """(relative path, size, mtime in ns) of every file under ``path``, sorted; a file alone
    gives its own entry. Symlinks are not followed."""
    path = pathlib.Path(path)
    if path.is_file():
        st = path.stat()
        return [[path.name, st.st_size, st.st_mtime_ns]]
    out = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            p = pathlib.Path(root) / name
            try:
                st = p.lstat()
            except OSError:
                continue
            out.append([str(p.relative_to(path)), st.st_size, st.st_mtime_ns])
    return out


def key(run, steps, settings: Mapping[str, Any]) -> str:
    """The entry's key for ``run`` (a :class:`gatekit.io.Run`) with these complete ``steps``."""
    from gatekit import __version__
    from gatekit.statistics import REGISTRY

    h = hashlib.sha256()
    body = {
        "version": VERSION, "gatekit": __version__, "statistics": [s.name for s in REGISTRY],
        "run": str(pathlib.Path(run.path).resolve()), "run_json": fingerprint(run.path / "run.json"),
        "probe_npz": fingerprint(run.path / "probe.npz") if (run.path / "probe.npz").exists() else None,
        "settings": settings,
        "steps": [[int(s), fingerprint(run.checkpoint_dir / str(s))] for s in steps],
    }
    h.update(json.dumps(body, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _plain(value):
    """NumPy scalars as Python numbers (NaN stays NaN: the rows come back exactly)."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not cacheable: {type(value).__name__}")


def get(k: str) -> dict | None:
    """The entry under key ``k``, or None (absent, disabled, unreadable)."""
    where = folder()
    if where is None:
        return None
    try:
        entry = json.loads((where / f"{k}.json").read_text())
    except (OSError, ValueError):
        return None
    return entry if isinstance(entry, dict) and entry.get("key") == k else None


def put(k: str, entry: dict) -> None:
    """Stores ``entry`` under key ``k`` (atomically); silently nothing when the cache is
    disabled or not writable."""
    where = folder()
    if where is None:
        return
    try:
        where.mkdir(parents=True, exist_ok=True)
        tmp = where / f".{k}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({**entry, "key": k}, default=_plain))
        os.replace(tmp, where / f"{k}.json")
    except (OSError, TypeError, ValueError):
        return

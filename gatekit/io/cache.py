"""The score cache: a run's scored rows, kept so that ``select``, ``plot``, ``report`` and
``score`` on a run already scored take well under a second instead of restoring and scoring every
checkpoint again.

One entry per run, content-addressed: the key hashes the run's ``run.json``, every complete
checkpoint's files (relative path, size and the sha256 of their bytes, so a rewritten, damaged,
new or removed checkpoint changes it, whatever its file times say), the scoring settings (probe file and size, seed, reference and
its files), gatekit's version and the statistics it computes. A run with a new or changed
checkpoint is scored again as a whole: by default its retrospective columns (CKA / q_corr) are
against its *last* checkpoint, so a new checkpoint changes every row.

Where: ``$GATEKIT_SCORE_CACHE``, else ``$XDG_CACHE_HOME/gatekit/scores`` (default
``~/.cache/gatekit/scores``); ``GATEKIT_SCORE_CACHE=0`` (or ``off``) disables it, as does
``--no-cache`` / ``score(cache=False)``. Entries are small JSON files; delete the folder to clear
it. A cache that cannot be read or written is ignored (the run is simply scored), and so is an
entry that is not a regular file, is badly formed or was edited.

Each entry is **signed**: an HMAC-SHA256 of its payload under a key the cache folder does not
hold (``$GATEKIT_CACHE_KEY``, else ``$XDG_CONFIG_HOME/gatekit/cache.key``, default
``~/.config/gatekit/cache.key``: 32 random bytes made on first use, readable by the user alone).
An entry whose rows were edited, even with its digest recomputed, is not served: the run is scored
again. A key inside the cache folder, or one that cannot be read or made, turns the cache off.
Signing costs what the plain digest it replaced cost (``benchmarks/cache_cost.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
from typing import Any, Mapping

ENV = "GATEKIT_SCORE_CACHE"
KEY_ENV = "GATEKIT_CACHE_KEY"
VERSION = 5
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
    """(relative path, size, sha256 of the bytes) of every regular file under ``path``, sorted; a
    file alone gives its own entry. Symlinks are not followed. The key is the *content*: an edit
    of any byte changes it, whatever the file's times say (a same-size bit flip with its mtime
    restored once reused stale rows). Reading the files costs a fraction of rescoring them
    (``benchmarks/cache_cost.py``)."""
    path = pathlib.Path(path)
    if path.is_file():
        return [[path.name, *_content(path)]]
    out = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            p = pathlib.Path(root) / name
            if p.is_symlink() or not p.is_file():
                out.append([str(p.relative_to(path)), "not a regular file"])
                continue
            out.append([str(p.relative_to(path)), *_content(p)])
    return out


def _content(path: pathlib.Path) -> list:
    """[size, sha256] of a regular file read in chunks (never through a link or a FIFO); a file
    that cannot be read gives a marker, so it never matches a readable one."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        return [None, f"unreadable: {e.strerror}"]
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return [None, "not a regular file"]
        h = hashlib.sha256()
        with os.fdopen(fd, "rb", closefd=False) as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return [st.st_size, h.hexdigest()]
    except OSError as e:
        return [None, f"unreadable: {e.strerror}"]
    finally:
        os.close(fd)


def key(run, steps, settings: Mapping[str, Any]) -> str:
    """The entry's key for ``run`` (a :class:`gatekit.io.Run`) with these complete ``steps``;
    ``settings`` is everything else the rows depend on (the scorer passes its statistics' names)."""
    from gatekit import __version__

    h = hashlib.sha256()
    body = {
        "version": VERSION, "gatekit": __version__,
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


def key_path(environ: Mapping[str, str] = os.environ) -> pathlib.Path:
    """Where the signing key lives (never in the cache folder)."""
    value = environ.get(KEY_ENV, "").strip()
    if value:
        return pathlib.Path(value)
    home = environ.get("XDG_CONFIG_HOME") or str(pathlib.Path.home() / ".config")
    return pathlib.Path(home) / "gatekit" / "cache.key"


def signing_key(where: pathlib.Path, *, make: bool = False) -> bytes | None:
    """The 32-byte signing key (made, 0600, when ``make`` and absent), or None: unreadable, not
    32 bytes, or inside the cache folder ``where`` (a key the cache holds signs nothing)."""
    path = key_path()
    try:
        if where.resolve() == path.resolve().parent or where.resolve() in path.resolve().parents:
            return None
        if make and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(32))
        text = _read_bytes(path)
    except OSError:
        return None
    return text if text is not None and len(text) == 32 else None


def _read_bytes(path: pathlib.Path, limit: int = 64) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        import stat

        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(limit)
    finally:
        os.close(fd)


def _digest(entry: Mapping[str, Any], secret: bytes) -> str:
    """HMAC-SHA256 under ``secret`` of an entry's payload (everything but ``key`` and
    ``digest``), canonical JSON."""
    import hmac

    body = {k: v for k, v in entry.items() if k not in ("key", "digest")}
    return hmac.new(secret, json.dumps(body, sort_keys=True, default=_plain).encode(), hashlib.sha256).hexdigest()


def _well_formed(entry) -> bool:
    """Rows as a list of objects, problems as [path, reason] string pairs, notes as strings."""
    return (isinstance(entry, dict) and isinstance(entry.get("rows"), list)
            and all(isinstance(r, dict) for r in entry["rows"])
            and isinstance(entry.get("problems"), list)
            and all(isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
                    for p in entry["problems"])
            and isinstance(entry.get("notes"), list) and all(isinstance(n, str) for n in entry["notes"]))


def _read_regular(path: pathlib.Path, limit: int = 64 << 20) -> str | None:
    """A regular file's text (never following a link, never blocking on a FIFO), or None."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(limit + 1).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    finally:
        os.close(fd)


def get(k: str) -> dict | None:
    """The entry under key ``k``, or None (absent, disabled, unreadable, not a regular file, badly
    formed, or edited since it was written: its digest no longer matches): the run is then
    simply scored again."""
    where = folder()
    if where is None:
        return None
    secret = signing_key(where)
    if secret is None:
        return None
    text = _read_regular(where / f"{k}.json")
    if text is None:
        return None
    try:
        entry = json.loads(text)
    except (ValueError, RecursionError):
        return None
    import hmac

    if not _well_formed(entry) or entry.get("key") != k or not isinstance(entry.get("digest"), str) \
            or not hmac.compare_digest(entry["digest"], _digest(entry, secret)):
        return None
    return entry


def put(k: str, entry: dict) -> None:
    """Stores ``entry`` under key ``k`` (atomically); silently nothing when the cache is
    disabled or not writable."""
    where = folder()
    if where is None:
        return
    try:
        where.mkdir(parents=True, exist_ok=True)
        secret = signing_key(where, make=True)
        if secret is None:
            return
        tmp = where / f".{k}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({**entry, "key": k, "digest": _digest(entry, secret)}, default=_plain))
        os.replace(tmp, where / f"{k}.json")
    except (OSError, TypeError, ValueError):
        return

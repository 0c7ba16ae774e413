"""Plain files: strict JSON values, atomic writes, file digests."""

from __future__ import annotations

import math
import os
import pathlib
import tempfile
from typing import Any, Mapping

import numpy as np

from gatekit.errors import GatekitError

PathLike = str | os.PathLike


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
    atomic_write(path, lambda f: f.write(text))


def atomic_write(path: pathlib.Path, fill, *, binary: bool = False) -> None:
    """Writes ``path`` atomically: ``fill(file)`` writes a temporary file in the same folder, which
    then takes the umask's permissions (as ``open`` would give) and is renamed into place."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # the temporary name stays short: a 255-character output name must still fit beside it
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:64]}.", suffix=".tmp")
    except OSError as e:
        raise GatekitError(f"{path}: cannot write there ({e.strerror or e})") from None
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            fill(f)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; written files follow the umask like open()
        os.replace(tmp, path)
    except OSError as e:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise GatekitError(f"{path}: cannot write there ({e.strerror or e})") from None
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: PathLike, text: str) -> pathlib.Path:
    """Writes ``text`` atomically (a temporary file renamed into place)."""
    path = pathlib.Path(path)
    _atomic_write_text(path, text)
    return path


def sha256_file(path: PathLike) -> str:
    """Hex SHA-256 of a file's bytes (what a gate records about the table it was fitted on)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_text(path: PathLike, *, hint: str = "") -> str:
    """A UTF-8 text file's content (a leading byte-order mark, as Excel writes, is dropped).
    GatekitError naming the file when it cannot be read or is not UTF-8; ``hint`` is appended to
    the cannot-read message."""
    path = pathlib.Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise GatekitError(f"{path}: cannot read ({e.strerror or e}){hint}") from None
    except UnicodeDecodeError as e:
        raise GatekitError(f"{path}: not UTF-8 text ({e})") from None
    return text[1:] if text.startswith("\ufeff") else text


def check_outputs(outputs: dict[str, PathLike | None], inputs: list[PathLike]) -> None:
    """Refuses, before any work, an output that would overwrite or land inside an input.

    ``outputs`` maps an option name (``--csv``) to a path (None and ``-`` for stdout are
    skipped); ``inputs`` are the run folders, tables and files the command reads. Paths are
    compared after resolving symlinks, so a link into a run is caught too. Outputs must also
    be file names in an existing folder, and two outputs never the same file.
    """
    resolved, taken = [], {}
    for src in inputs:
        try:
            resolved.append(pathlib.Path(src).resolve())
        except (OSError, RuntimeError):
            continue
    for opt, out in outputs.items():
        if out is None or str(out) == "-":
            continue
        p = pathlib.Path(out)
        if len(os.fsencode(p.name)) > 255:
            raise GatekitError(f"{opt} {str(p)[:80]}...: its file name is {len(os.fsencode(p.name))} bytes long, more "
                               f"than a file system allows (255); give a shorter name")
        try:  # a path the OS refuses (too long, ...) is an error naming the option, not an OSError
            is_dir, parent_exists, exists, target = p.is_dir(), p.parent.exists(), p.exists(), p.resolve()
        except OSError as e:
            raise GatekitError(f"{opt} {str(p)[:200]}: not a usable path ({e.strerror or e})") from None
        if is_dir:
            raise GatekitError(f"{opt} {p}: is a directory; give a file name")
        if not parent_exists:
            raise GatekitError(f"{opt} {p}: folder {p.parent} does not exist")
        if not os.access(p.parent, os.W_OK | os.X_OK) or (exists and not os.access(p, os.W_OK)):
            raise GatekitError(f"{opt} {p}: {'the file' if exists else f'folder {p.parent}'} is not writable; "
                               f"choose another path (checked before any work)")
        if target in taken:
            raise GatekitError(f"{taken[target]} and {opt} are the same file {p}: one would overwrite the other; "
                               f"give each its own path")
        taken[target] = opt
        for src in resolved:
            if target == src or src in target.parents:
                raise GatekitError(f"{opt} {p}: {'is' if target == src else 'lies inside'} the input {src}; "
                                   f"writing there would destroy it. Choose another path")
        owner = owning_folder(target.parent)
        if owner is not None:
            raise GatekitError(f"{opt} {p}: lies inside {owner[0]} ({owner[1]}); gatekit never writes into a run or a "
                               f"race from outside it. Choose another path")


OWNED_MARKS = {"run.json": "a gatekit run", "race-settings.json": "a race's folder"}
"""Files that mark a folder as a run's or a race's: nothing but their writer writes inside."""


def owning_folder(folder: PathLike) -> tuple[pathlib.Path, str] | None:
    """The nearest of ``folder`` and its parents that is a run or a race folder (and what it is),
    or None."""
    folder = pathlib.Path(folder)
    for d in (folder, *folder.parents):
        for mark, what in OWNED_MARKS.items():
            try:
                if (d / mark).is_file():
                    return d, what
            except OSError:
                continue
    return None


def open_own_file(path: PathLike, flags: int, what: str = "file") -> int:
    """``os.open`` for writing a file gatekit owns inside a run (the writer lock, ``metrics.jsonl``),
    never through a symbolic link and only onto a regular file: a link, a directory, a FIFO or a
    device there is refused with a GatekitError naming it (and nothing is written or blocked on).
    Returns the descriptor; creates the file (0644 before the umask) when absent."""
    import stat

    path = pathlib.Path(path)
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as e:
        if path.is_symlink():
            raise GatekitError(f"{path}: the run's {what} is a symbolic link; gatekit never writes through one "
                               f"(remove it)") from None
        if path.is_dir():
            raise GatekitError(f"{path}: the run's {what} is a directory (remove it)") from None
        raise GatekitError(f"{path}: cannot open the run's {what} ({e.strerror or e})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise GatekitError(f"{path}: the run's {what} is not a regular file (a FIFO or device?); remove it")
    return fd

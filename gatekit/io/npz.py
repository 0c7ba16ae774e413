""".npz arrays without pickle: a run's shared probe, and probes given on the command line."""

from __future__ import annotations

import os
import pathlib
import tempfile
from typing import Iterable

import numpy as np

from gatekit.errors import GatekitError
from gatekit.io.files import PathLike
from gatekit.io.runs import PROBE_NPZ, Run


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
    data = load_arrays(path)
    missing = [k for k in required if k not in data]
    if missing:
        raise GatekitError(f"{path}: missing array(s) {', '.join(missing)}")
    lengths = {k: len(v) for k, v in data.items() if np.ndim(v) > 0}
    if len(set(lengths.values())) > 1:
        raise GatekitError(f"{path}: arrays have different numbers of rows {lengths}")
    return data


def load_arrays(path: pathlib.Path, what: str = ".npz") -> dict[str, np.ndarray]:
    """Every array of an ``.npz``, without pickle, memory bounded by the file
    (:func:`check_npz_sizes`); GatekitError naming the file (and ``what`` it should be) otherwise."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise GatekitError(f"{path}: cannot read ({e.strerror or e})") from None
    if magic != b"PK\x03\x04":
        raise GatekitError(f"{path}: not an .npz file (an .npz is a zip of .npy arrays: save one with numpy.savez)")
    check_npz_sizes(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise GatekitError(f"{path}: holds object arrays, which need pickle; gatekit reads numeric arrays only") from None
        raise GatekitError(f"{path}: unreadable {what} ({e})") from None
    except Exception as e:  # noqa: BLE001 - BadZipFile, NotImplementedError, RuntimeError (encrypted), ...
        raise GatekitError(f"{path}: damaged {what} ({type(e).__name__}: {str(e)[:200]})") from None


MAX_NPZ_MB = 256
"""The most an ``.npz`` may inflate to (all members together), in MiB: a probe or a benchmark
task is a few MB, so a file that inflates to more is refused before anything is inflated
(``GATEKIT_MAX_NPZ_MB`` raises the cap)."""


def mib_from_env(var: str, default: float) -> int:
    """A cap in bytes from the environment variable ``var`` (MiB; ``default`` when unset);
    GatekitError naming the variable for anything but a number in (0, :data:`MAX_NPZ_MB_LIMIT`]."""
    raw = os.environ.get(var)
    try:
        mb = float(raw) if raw else default
    except ValueError:
        raise GatekitError(f"{var}={raw!r}: not a number of MiB") from None
    if not (mb == mb and 0 < mb <= MAX_NPZ_MB_LIMIT):  # NaN, inf, 1e308, 0 and negatives made every file "damaged"
        raise GatekitError(f"{var}={raw!r}: must be a number of MiB in (0, {MAX_NPZ_MB_LIMIT}]")
    return int(mb * 2**20)


def max_npz_bytes() -> int:
    return mib_from_env("GATEKIT_MAX_NPZ_MB", MAX_NPZ_MB)


MAX_NPZ_MB_LIMIT = 1 << 20
"""The largest cap ``GATEKIT_MAX_NPZ_MB`` may set (1 TiB): beyond it the variable is a typo."""


MAX_DEFLATE_RATIO = 1100
"""Deflate cannot expand data more than ~1032x: a member claiming more is a zip bomb or a lie."""


def check_npz_sizes(path: pathlib.Path) -> None:
    """Before anything is allocated: the members together inflate to at most :func:`max_npz_bytes`,
    every member's declared array size fits in the bytes the zip says it holds, and those bytes in
    what deflate can produce from the file. Memory is then bounded by the file (x the deflate
    ratio for a compressed .npz) and by the cap."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            total, cap = sum(i.file_size for i in z.infolist()), max_npz_bytes()
            if total > cap:
                raise GatekitError(f"{path}: inflates to {total:,} bytes, more than gatekit reads from one .npz "
                                   f"({cap / 2**20:g} MiB; GATEKIT_MAX_NPZ_MB raises the cap)")
            names = [i.filename.removesuffix(".npy") for i in z.infolist()]
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:  # "values" and "values.npy": which one np.load reads is an accident
                raise GatekitError(f"{path}: member(s) {twice} appear twice (with and without .npy)")
            for info in z.infolist():
                if not info.filename.endswith(".npy"):
                    raise GatekitError(f"{path}: member {info.filename!r} is not an .npy array")
                if info.file_size > MAX_DEFLATE_RATIO * info.compress_size + 2**20:
                    raise GatekitError(f"{path}: member {info.filename} claims {info.file_size:,} bytes from "
                                       f"{info.compress_size:,} compressed (more than deflate can produce)")
                if not info.filename.endswith(".npy"):
                    continue
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                        np.lib.format.read_array_header_2_0
                    shape, _, dtype = read(f)
                need = int(np.prod([int(d) for d in shape], dtype=object)) * dtype.itemsize
                if need > info.file_size:
                    raise GatekitError(f"{path}: member {info.filename} declares {need:,} bytes of data "
                                       f"{tuple(shape)} but holds {info.file_size:,}")
    except GatekitError:
        raise
    except Exception as e:  # noqa: BLE001 - zipfile raises many types for damaged archives
        raise GatekitError(f"{path}: damaged .npz ({type(e).__name__}: {str(e)[:200]})") from None


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

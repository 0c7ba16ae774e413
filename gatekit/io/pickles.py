"""JaxGCRL checkpoints: the one place gatekit reads a pickle, through an allow-list."""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np

from gatekit.errors import GatekitError
from gatekit.io.files import PathLike


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

"""JaxGCRL checkpoints: the one place gatekit reads a pickle, through an allow-list."""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np

from gatekit.errors import GatekitError
from gatekit.io.files import PathLike


MAX_DEPTH = 64
"""Containers in a JaxGCRL checkpoint nest a few levels; deeper (or self-referencing) is refused."""


class _Budget:
    """What one pickle may allocate: array and string bytes bounded by the file's own size (an
    array's data is in the file; a pickle cannot legitimately hold more than it carries)."""

    def __init__(self, limit: int):
        self.limit = limit

    def check(self, nbytes: int, what: str) -> None:
        if nbytes > self.limit:
            raise GatekitError(f"refused: {what} would need {nbytes:,} bytes but the file holds only "
                               f"{self.limit:,} (a pickle cannot carry more data than its own size)")


_BUDGET = _Budget(0)


def _nbytes(shape, dtype) -> int:
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if not all(isinstance(d, (int, np.integer)) and d >= 0 for d in shape):
        raise GatekitError(f"refused: array shape {shape!r}")
    return int(np.prod([int(d) for d in shape], dtype=object)) * np.dtype(dtype).itemsize


class _CheckedArray(np.ndarray):
    """The array type a pickle's arrays are rebuilt as: its ``__setstate__`` (pickle's BUILD)
    refuses object dtypes (also a plain dtype whose flags were edited to hold objects) and data
    larger than the file before NumPy sees it. Turned into plain ``np.ndarray`` after loading."""

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) < 4:
            raise GatekitError("refused: malformed array state")
        shape, dtype = state[1], state[2]
        if not isinstance(dtype, np.dtype) or dtype.hasobject or dtype.flags & 0x01:
            raise GatekitError("refused: an object dtype (arrays of Python objects need arbitrary unpickling)")
        _BUDGET.check(_nbytes(shape, dtype), "an array")
        super().__setstate__(state)


def _reconstruct(subtype, shape, dtype):
    _BUDGET.check(_nbytes(shape, dtype), "an array")
    return np._core.multiarray._reconstruct(_CheckedArray, shape, dtype)


def _new_array(shape, dtype=float, *args, **kwargs):
    """``numpy.ndarray(shape, dtype, ...)`` called directly: bounded like any other array."""
    if np.dtype(dtype).hasobject:
        raise GatekitError("refused: an object dtype")
    _BUDGET.check(_nbytes(shape, dtype), "an array")
    return np.ndarray(shape, dtype, *args, **kwargs)


def _np_reconstruct_array(fun, args, arr_state, aval_state):
    """Stands in for ``jax._src.array._reconstruct_array``: the same NumPy array, no device put."""
    value = fun(*args)
    value.__setstate__(arr_state)
    return value


def _plain_dtype(*args, **kwargs):
    dt = np.dtype(*args, **kwargs)
    if dt.hasobject:
        raise GatekitError("refused: an object dtype (arrays of Python objects need arbitrary unpickling)")
    _BUDGET.check(dt.itemsize, f"one {dt} element")  # a huge void, string or subarray dtype: one scalar is that big
    return dt


def _as_dict(*args, **kwargs):
    return dict(*args, **kwargs)


def _checked_scalar(dtype, *args):
    """A NumPy scalar: its dtype's one element must fit in the file, like any array's data."""
    dt = np.dtype(dtype)
    if dt.hasobject:
        raise GatekitError("refused: an object-dtype NumPy scalar")
    _BUDGET.check(dt.itemsize, "a NumPy scalar")
    return np._core.multiarray.scalar(dt, *args)


def _codecs_encode(obj, encoding="utf-8", errors="strict"):
    """What NumPy's pickles use ``_codecs.encode`` for: a str of array bytes to bytes (latin1)."""
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise GatekitError(f"refused: _codecs.encode of {type(obj).__name__} with encoding {encoding!r}")
    _BUDGET.check(4 * len(obj), "a string")
    return obj.encode(encoding, errors)


# (module, name) -> the callable used instead. Everything else is refused without being imported.
# Arrays pickled by NumPy 1 name ``numpy.core``, by NumPy 2 ``numpy._core``: both are allowed.
PICKLE_ALLOWED = {
    ("numpy", "ndarray"): _new_array,
    ("numpy", "dtype"): _plain_dtype,
    **{(mod, "_reconstruct"): _reconstruct
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

    class Restricted(pickle._Unpickler):  # the Python unpickler: its BUILD can be checked (below)
        def find_class(self, module, name):
            fn = PICKLE_ALLOWED.get((module, name))
            if fn is None:
                raise GatekitError(f"{path}: refused to load {module}.{name} (only arrays and plain containers "
                                   f"are read from pickles)")
            return fn

        def load_build(self):
            """BUILD sets an object's state: allowed only for a rebuilt array (checked by
            :class:`_CheckedArray`) and for a dtype whose state is exactly its own (NumPy's
            ``dtype.__setstate__`` does not validate edited states: a fuzzed one can crash it)."""
            state = self.stack.pop()
            inst = self.stack[-1]
            if isinstance(inst, _CheckedArray):
                inst.__setstate__(state)
            elif isinstance(inst, np.dtype):
                if state != inst.__reduce__()[2]:
                    raise GatekitError(f"refused: a {inst} dtype with an edited state {state!r:.80}")
            else:
                raise GatekitError(f"refused: setting the state of a {type(inst).__name__}")

        dispatch = dict(pickle._Unpickler.dispatch)
        dispatch[pickle.BUILD[0]] = load_build

    path = pathlib.Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise GatekitError(f"{path}: cannot read ({e.strerror or e})") from None
    global _BUDGET
    _BUDGET = _Budget(len(data))
    try:
        return _plain(Restricted(_io.BytesIO(data)).load(), len(data))
    except GatekitError as e:
        raise GatekitError(f"{path}: {e}" if not str(e).startswith(str(path)) else str(e)) from None
    except Exception as e:  # noqa: BLE001 - truncated or foreign data
        raise GatekitError(f"{path}: not a readable JaxGCRL checkpoint ({type(e).__name__}: {e})") from None
    finally:
        _BUDGET = _Budget(0)


def _plain(tree: Any, limit: int) -> Any:
    """The loaded tree with every array a plain ``np.ndarray``, after an iterative check (no
    recursion on untrusted depth): nesting at most :data:`MAX_DEPTH`, no container inside itself,
    at most ``limit`` objects, no object-dtype array."""
    stack, nodes = [(tree, 0, frozenset())], 0
    while stack:
        node, depth, above = stack.pop()
        nodes += 1
        if nodes > limit:
            raise GatekitError("refused: more objects than the file has bytes")
        if depth > MAX_DEPTH:
            raise GatekitError(f"refused: containers nested deeper than {MAX_DEPTH}")
        if isinstance(node, np.ndarray) and node.dtype.hasobject:
            raise GatekitError("refused: an object-dtype array")
        if isinstance(node, (dict, list, tuple)):
            if id(node) in above:
                raise GatekitError("refused: a container that contains itself")
            inner = above | {id(node)}
            stack += [(v, depth + 1, inner) for v in (node.values() if isinstance(node, dict) else node)]
    return _convert(tree)


def _convert(node: Any) -> Any:
    """Arrays to plain ``np.ndarray`` (depth already bounded by :func:`_plain`)."""
    if isinstance(node, np.ndarray):
        return np.asarray(node)
    if isinstance(node, dict):
        return {k: _convert(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return type(node)(_convert(v) for v in node)
    return node

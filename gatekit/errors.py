"""The one error class gatekit raises for bad input, and the record of a skipped item."""

from __future__ import annotations

import dataclasses


class GatekitError(Exception):
    """Bad input or an unusable file: the message names the argument or the file and why.

    The CLI turns this into a message on stderr and exit code 1.
    """


class GatekitDeprecation(FutureWarning):
    """A deprecated alias was used (``--mode``): the command lines print it as ``PROG: warning: ...``."""


class GatekitNote(UserWarning):
    """Something the user should know that changes nothing (a preset chosen over a file of the same
    name): the command lines print it once as ``PROG: note: ...``."""


@dataclasses.dataclass(frozen=True)
class Problem:
    """Something that was skipped (a run, a checkpoint) and why; reported, never fatal."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def plain_reason(e: BaseException) -> str:
    """A one-line reason for a skipped item: GatekitError's own words, else the type and message."""
    if isinstance(e, GatekitError):
        return str(e)
    if isinstance(e, PermissionError):
        return f"permission denied ({e.filename or e})"
    import numpy as np

    if isinstance(e, np.linalg.LinAlgError):
        return f"linear algebra failed on its outputs ({e}): non-finite or degenerate values"
    text = " ".join(str(e).split())
    if len(text) > 300:
        text = text[:300] + "..."
    name = type(e).__name__
    if "ScopeParamShapeError" in name or "shape" in text.lower():
        return f"parameters do not match the run's net config ({name}: {text})"
    return f"{name}: {text}" if text else name

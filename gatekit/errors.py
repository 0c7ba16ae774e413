"""The one error class gatekit raises for bad input, and the record of a skipped item."""

from __future__ import annotations

import dataclasses


class GatekitError(Exception):
    """Bad input or an unusable file: the message names the argument or the file and why.

    The CLI turns this into a message on stderr and exit code 1.
    """


@dataclasses.dataclass(frozen=True)
class Problem:
    """Something that was skipped (a run, a checkpoint) and why; reported, never fatal."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"

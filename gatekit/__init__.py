"""gatekit: which teacher checkpoint to distill from.

    import gatekit
    table = gatekit.score("runs/teacher")             # one row per checkpoint
    choice = gatekit.select(table, gate="gate.json")  # earliest checkpoint past a fitted gate
    fit = gatekit.fit("pairs.csv", label="student_success", label_relative=0.8, group="teacher_seed")

Heavy modules (JAX, Orbax, scikit-learn, matplotlib) load on first use.
"""

from __future__ import annotations

import importlib

from gatekit.errors import GatekitError, Problem

__version__ = "0.1.0"

_LAZY = {
    "score": "gatekit.scoring",
    "ScoreTable": "gatekit.scoring",
    "select": "gatekit.api",
    "fit": "gatekit.api",
    "plot": "gatekit.api",
    "fit_threshold": "gatekit.gate",
    "evaluate_rule": "gatekit.gate",
    "FitResult": "gatekit.gate",
    "Gate": "gatekit.gate",
    "fit_all": "gatekit.api",
    "save_gate": "gatekit.api",
    "read_gate": "gatekit.checkpoints",
    "write_gate": "gatekit.checkpoints",
    "Selection": "gatekit.gate",
    "GateHook": "gatekit.hooks",
    "register_family": "gatekit.networks",
    "RunWriter": "gatekit.checkpoints",
    "read_run": "gatekit.checkpoints",
    "load_checkpoint": "gatekit.checkpoints",
    "list_checkpoints": "gatekit.checkpoints",
}

__all__ = ["GatekitError", "Problem", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gatekit' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)

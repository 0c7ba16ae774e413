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
    "ScoreTable": "gatekit.scoretable",
    "select": "gatekit.api",
    "race": "gatekit.api",
    "CallableTrainer": "gatekit.racing",
    "CommandTrainer": "gatekit.racing",
    "fit": "gatekit.api",
    "plot": "gatekit.api",
    "fit_all": "gatekit.api",
    "save_gate": "gatekit.api",
    "read_benchmark": "gatekit.io",
    "report": "gatekit.report",
    "fit_threshold": "gatekit.fitting",
    "evaluate_rule": "gatekit.fitting",
    "FitResult": "gatekit.fitting",
    "Rule": "gatekit.rule",
    "Gate": "gatekit.io",
    "read_gate": "gatekit.io",
    "write_gate": "gatekit.io",
    "Selection": "gatekit.selection",
    "GateHook": "gatekit.hooks",
    "register_family": "gatekit.networks",
    "RunWriter": "gatekit.io",
    "read_run": "gatekit.io",
    "load_checkpoint": "gatekit.io",
    "list_checkpoints": "gatekit.io",
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

"""The library and the trainer stay in their rooms: ``gatekit`` never imports ``training``."""

import ast
import pathlib
import subprocess
import sys

import gatekit

ROOT = pathlib.Path(gatekit.__file__).parent


def test_no_gatekit_module_imports_training():
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.relative_to(ROOT.parent)}:{node.lineno} imports {n}" for n in names
                      if n == "training" or n.startswith("training.")]
    assert not found, found


def test_gatekit_works_with_training_hidden(tmp_path):
    """Every public name of gatekit resolves, and a run scores and selects, with ``training``
    impossible to import."""
    code = r'''
import sys
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name == "training" or name.startswith("training."):
            raise ImportError("training is hidden")
sys.meta_path.insert(0, Hide())
sys.path.insert(0, "tests")
import gatekit
for name in gatekit.__all__:
    getattr(gatekit, name)
from conftest import write_run
write_run(sys.argv[1] + "/run", steps=(100, 200, 300))
table = gatekit.score(sys.argv[1] + "/run", cache=False)
print(len(table.rows), gatekit.select(table, gate="final").step, gatekit.select(table).gate.name)
'''
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                       cwd=ROOT.parent, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    from gatekit import api

    assert r.stdout.split() == ["3", "300", api.resolve_gate(None).name]  # no gate: the preset with the best record


def test_gatekit_io_stays_below_the_statistics_and_networks():
    """``gatekit.io`` (the formats) reads and writes files; what a column means (the statistics
    registry), the networks and the scorer live above it, so io never imports them, not even
    inside a function (a lazy import once made io, statistics, networks and jaxgcrl one cycle)."""
    allowed = ("gatekit.io", "gatekit.errors", "gatekit.rule", "gatekit.transforms", "gatekit.interrupts")
    found = []
    for path in sorted((ROOT / "io").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gatekit"):
                names = [node.module] if node.module != "gatekit" else [f"gatekit.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("gatekit")]
            else:
                continue
            found += [f"{path.relative_to(ROOT.parent)}:{node.lineno} imports {n}" for n in names
                      if not n.startswith(allowed) and n != "gatekit.__version__"]
    assert not found, found

"""The README's headline table says what the committed dataset analysis says: every row's
*right* and *mean regret* are read back from the results it links (the benchmark's
``datasetN/results.json``, issue 43's ``spend_studentsN/results.json``), so a figure cannot go
stale when the dataset grows."""

from __future__ import annotations

import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
BENCH = "examples/results/gatebench"

ROWS = (  # README row (its start) -> (source, method); "ceiling" is results.json's ceiling
    ("final checkpoint", "bench", "final checkpoint"),
    ("training step", "bench", "training step"),
    ("fraction of budget", "bench", "fraction of budget"),
    ("teacher's own eval", "bench", "teacher eval (any form)"),
    ("paper rule", "bench", "paper rule (action_magnitude < 0.63, nothing fitted)"),
    ("best statistic", "bench", "best statistic"),
    ("student_grad_norm", "bench", "student_grad_norm"),
    ("student_grace", "bench", "student_grace"),
    ("pilot 25%, 2 students, every checkpoint", "bench", "pilot 25%, 2 students"),
    ("pilots of 25% on the last 3", "bench", "pilot race (gatekit race --strategy pilot): 25% pilots on the last 3"),
    ("successive halving, last 4", "bench", "successive halving, last 4, at 25% then full"),
    ("1 full student, last 3", "bench", "1 full student, last 3"),
    ("GP race (A-OPS-style), student-side prior", "bench", "GP race (A-OPS-style), 3 students, student-side prior (fitted)"),
    ("successive halving, K and rungs fitted", "bench", "successive halving (K and rungs fitted)"),
    ("last 3, then a second student", "bench", "1 full student, last 3, a second at the best 2"),
    ("1 full student, last K", "bench", "1 full student, last K (K fitted)"),
    ("seeds by need: 6 students", "spend", "by need, 6 students (last 4, then by need)"),
    ("GP race, 6 students", "spend", "GP race, 6 students"),
    ("ceiling", "bench", "ceiling"),
)


def _headline() -> tuple[list[list[str]], dict]:
    text = (ROOT / "README.md").read_text()
    at = text.index("| rule | choose: right |")
    rows = []
    for line in text[at:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    section = text[:at][text[:at].rindex("\n## "):]  # the table's own section names its sources
    bench = re.findall(rf"{BENCH}/(dataset\d+)/frontier.png", section)  # the table's own figure
    spend = re.findall(rf"{BENCH}/(spend_students\d*)/", section)
    assert len(set(bench)) == 1 and len(set(spend)) == 1, \
        f"the headline section must show one datasetN/frontier.png and link one spend_students*/ ({bench}, {spend})"
    return rows, {"bench": json.loads((ROOT / BENCH / bench[0] / "results.json").read_text()),
                  "spend": json.loads((ROOT / BENCH / spend[0] / "results.json").read_text())}


def _record(sources: dict, source: str, method: str) -> dict:
    if method == "ceiling":
        return sources["bench"]["ceiling"]["choose"]
    if source == "spend":
        return next(r for r in sources["spend"]["frontier"] if r["method"] == method)
    return next(r for r in sources["bench"]["results"]
                if r["group"] == "task" and r["decision"] == "choose" and r["method"] == method)


def test_the_headline_table_is_the_committed_analysis():
    rows, sources = _headline()
    assert len(rows) >= 15
    checked = set()
    for cells in rows:
        label = re.sub(r"[*`]", "", cells[0])
        match = [r for r in ROWS if label.startswith(r[0])]
        assert match, f"README headline row {label!r}: no source known (add it to tests/test_readme.py ROWS)"
        _, source, method = max(match, key=lambda r: len(r[0]))
        rec = _record(sources, source, method)
        right = re.search(r"\d\.\d\d", cells[1]).group(0)
        regret = re.search(r"(\d+\.\d)%", cells[2]).group(1)
        assert right == f"{rec['success']:.2f}", (label, right, rec["success"])
        assert regret == f"{100 * rec['regret']:.1f}", (label, regret, rec["regret"])
        checked.add(method)
    assert {"final checkpoint", "1 full student, last 3", "ceiling"} <= checked

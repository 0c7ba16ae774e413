"""gatekit.api, directly: the plot's star and the values a transformed gate reads."""

import pytest

from gatekit import api, plotting, selection
from gatekit.io import Gate


ROWS = [{"run": "a", "step": s, "m": v, "eval_success": 0.5} for s, v in ((100, 1.0), (200, 3.0), (300, 4.0))]


def test_plot_stars_the_selection_it_is_given(tmp_path, monkeypatch):
    drawn = {}
    real = plotting.plot_metric_vs_step
    monkeypatch.setattr(plotting, "plot_metric_vs_step", lambda *a, **kw: drawn.update(kw) or real(*a, **kw))
    gate = Gate(metric="m", direction="above", threshold=2.0)
    api.plot(ROWS, tmp_path / "own.png", gate=gate)
    assert drawn["selected"] == ("a", 200)  # selected here: the gate's own pick
    given = selection.select(ROWS, gate=Gate(metric="m", direction="above", threshold=3.5))
    api.plot(ROWS, tmp_path / "given.png", gate=gate, selected=given)
    assert drawn["selected"] == ("a", 300)  # the answer passed in is the one starred (it was overwritten)
    assert (tmp_path / "given.png").stat().st_size > 0


def test_transformed_rows_are_what_select_reads():
    rows = api.transformed_rows(ROWS, "m", "ratio_first")
    assert [r["ratio_first(m)"] for r in rows] == pytest.approx([1.0, 3.0, 4.0])
    assert [r["step"] for r in rows] == [100, 200, 300] and rows[0]["m"] == 1.0

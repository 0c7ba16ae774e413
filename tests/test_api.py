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
    rows = api.transformed_rows(ROWS, Gate("m", "above", 0.0, transform="ratio_first"))
    assert [r["ratio_first(m)"] for r in rows] == pytest.approx([1.0, 3.0, 4.0])
    assert [r["step"] for r in rows] == [100, 200, 300] and rows[0]["m"] == 1.0


def test_pairs_refuse_ambiguous_joins_naming_the_rows():
    """Issue 34 item 8: with A/t0 and B/t0 a student row t0 silently went to B/t0; duplicated score
    rows for one checkpoint silently let the last win."""
    from gatekit import pairs
    from gatekit.errors import GatekitError

    scores = [{"run": "t0", "run_path": "/x/A/t0", "step": 100, "m": 1.0},
              {"run": "t0", "run_path": "/x/B/t0", "step": 100, "m": 2.0}]
    with pytest.raises(GatekitError, match="row 1: run 't0' at step 100 matches 2 checkpoints"):
        pairs.join(scores, [{"run": "t0", "step": 100, "o": 0.5}])
    joined, _ = pairs.join(scores, [{"run": "/x/B/t0", "step": 100, "o": 0.5}])  # the path is unambiguous
    assert joined[0]["m"] == 2.0
    with pytest.raises(GatekitError, match="rows 1 and 2 are the same checkpoint /x/A/t0@100"):
        pairs.join([scores[0], dict(scores[0], m=3.0)], [{"run": "t0", "step": 100, "o": 0.5}])

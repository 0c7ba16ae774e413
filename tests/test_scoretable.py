"""gatekit.scoretable directly: indexing by row, slice and column."""

import numpy as np

from gatekit.scoretable import ScoreTable


def test_rows_slices_and_columns():
    t = ScoreTable(rows=[{"run": "a", "step": 100, "m": 1.0}, {"run": "a", "step": 200, "m": 2.5}])
    assert len(t) == 2 and t[1]["step"] == 200 and list(t)[0]["m"] == 1.0
    np.testing.assert_array_equal(t["m"], [1.0, 2.5])
    assert isinstance(t[:1], ScoreTable) and len(t[:1]) == 1
    assert {"run", "step", "m"} <= set(t.columns)
    assert "2 checkpoint(s) of 1 run(s)" in repr(t)

"""gatekit.report directly: students are matched to their teacher checkpoint; an unreadable one
is reported, not fatal; a bad output type fails before any work."""

import pytest
from conftest import write_run

from gatekit.report import report, student_outcomes
from gatekit.errors import GatekitError


def test_student_outcomes_and_an_unknown_report_type(run_dir, tmp_path):
    write_run(tmp_path / "students" / "s0", role="student", teacher=str(run_dir), teacher_step=200, seed=3)
    write_run(tmp_path / "students" / "s1", role="student", teacher=str(run_dir), teacher_step=300, seed=4)
    (tmp_path / "students" / "s1" / "checkpoints").rename(tmp_path / "students" / "s1" / "gone")
    problems = []
    found = student_outcomes([tmp_path / "students"], problems)
    assert [(r["teacher_step"], r["seed"]) for r in found] == [(200, 3)]
    assert found[0]["teacher"] == str(run_dir.resolve()) and found[0]["success"] == pytest.approx(2 / 3)
    assert len(problems) == 1 and "s1" in str(problems[0])
    with pytest.raises(GatekitError, match="unknown report type '.txt'"):
        report([run_dir], tmp_path / "r.txt")


def test_student_means_are_joined_only_across_checkpoints_that_follow_one_another():
    from gatekit.report import _adjacent

    saved = [10, 20, 30, 40, 50]
    # the first and the last two were measured: no line may cross the unmeasured 20 and 30
    assert _adjacent([10.0, 40.0, 50.0], saved) == [[10.0], [40.0, 50.0]]
    assert _adjacent([10.0, 20.0, 30.0], saved) == [[10.0, 20.0, 30.0]]
    assert _adjacent([10.0, 35.0, 40.0], saved) == [[10.0], [35.0], [40.0]]  # a step not saved stands alone

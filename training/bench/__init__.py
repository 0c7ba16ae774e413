"""The gate benchmark, in one package: which rule for "which teacher checkpoint to distill from"
holds on tasks it was not fitted on?

* :mod:`training.bench.grid`: the declared grid (tasks, configs, seeds, budgets) and training it,
  task by task, into the dataset (``python -m training gatebench``);
* :mod:`training.bench.data`: one task's run folders read into the dataset format
  (:mod:`gatekit.io.dataset`);
* :mod:`training.bench.methods`: the rules scored on it (zero-cost statistics, pilots, measured
  students, successive halving), fitted inside each fold and judged by :mod:`gatekit.judge`;
* :mod:`training.bench.analysis`: the leave-one-task-out table, each rule's cost, the plot, and
  the presets' held-out records.

The library (``gatekit``) keeps what a user applies: the rule (:mod:`gatekit.rule`), ``select``'s
pick (:func:`gatekit.selection.pick`, which the benchmark scores rules with) and the fair judge.
"""

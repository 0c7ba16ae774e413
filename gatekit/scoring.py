"""Scoring: every complete checkpoint of one or many runs -> one tidy table row each.

Per checkpoint (all *online* unless marked: computable when the checkpoint is saved):
  * policy statistics (``action_magnitude``, ``log_std_mean``, ``entropy``) on the
    checkpoint's *own* ``sample`` (the states and goals its epoch visited);
  * representation statistics (``sa_rank``, ``goal_rank``, ``alignment``, ``uniformity_*``,
    ``contrastive_acc``, ``infonce``) on the (obs, action, future goal) rows of that same sample,
    or on a fixed probe (``probe.npz`` / ``--probe``) when one is given;
  * drift against the previous checkpoint (``cka_sa_prev``, ``cka_goal_prev``, ``q_corr_prev``);
  * retrospective: CKA / q_corr against a reference checkpoint (default: the run's last usable
    one) on a probe shared by every checkpoint of the run (the run's ``probe.npz``, else the
    reference checkpoint's sample), so that they compare like with like.

The forward pass is jitted once per (network config, input shape): equal ``net`` configs share
one family object (see :func:`gatekit.networks.build`) and hence one compiled function.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import pathlib
import time
from typing import Any, Callable, Iterable

import numpy as np

from gatekit import interrupts, io
from gatekit.io import cache as cache_io
from gatekit import metrics as M
from gatekit.errors import GatekitError, Problem, plain_reason
from gatekit.scoretable import ScoreTable
from gatekit.statistics import (METRIC_NAMES, check_outputs, checkpoint_row, checkpoint_statistics, planned_epochs,
                                repr_on)

ProgressFn = Callable[[int, int, str], None]


def _check_run_json(run: io.Run, rows: list, start: int, written_elsewhere: dict, problems: list,
                    notes: list) -> None:
    """Checkpoints written under another run.json than the rest of their run's were copied in
    from another run: their rows (from ``start``) are dropped and each is reported as skipped.
    When every checkpoint differs, the run's run.json itself was edited since: a note."""
    foreign = {s for s, changed in written_elsewhere.items() if changed}
    if not foreign:
        return
    if len(foreign) < len(written_elsewhere):
        kept = [r for r in rows[start:] if r["step"] not in foreign]
        del rows[start:]
        rows += kept
        problems += [Problem(str(run.checkpoint_dir / str(s)), "written under another run.json than this run's other "
                             "checkpoints (copied in from another run?); skipped") for s in sorted(foreign)]
    else:
        notes.append(f"{run.path}: run.json differs from the one its checkpoints were written with (edited "
                     f"since?); values use the current run.json")


def _family(run: io.Run):
    from gatekit import networks

    return networks.build(run.family, run.net)


# --------------------------------------------------------------------------------------------
# Reference and probe
# --------------------------------------------------------------------------------------------


def load_reference(spec: str, items: tuple[str, ...] = io.ITEMS) -> io.Checkpoint:
    """Loads a reference checkpoint ``RUN_DIR[@STEP]`` (default: the last complete one)."""
    path, step = io.parse_checkpoint_spec(spec)
    run = io.read_run(path)
    steps, _ = io.list_checkpoints(run)
    if step is None:
        if not steps:
            raise GatekitError(f"{path}: no complete checkpoint to use as reference")
        step = steps[-1]
    elif step not in steps:
        raise GatekitError(f"{path}: no complete checkpoint at step {step} (have {steps})")
    return io.load_checkpoint(run, step, items=items)


def probe_from_sample(sample: dict[str, np.ndarray], source: str = "checkpoint") -> dict[str, np.ndarray]:
    """A probe from a checkpoint sample: (obs, action) with the future goal as positive."""
    missing = [k for k in ("obs", "action", "future_goal") if k not in sample]
    if missing:
        raise GatekitError(f"{source}/sample lacks {missing} (needed to build a probe; or pass --probe)")
    return {"obs": sample["obs"], "action": sample["action"], "goal": sample["future_goal"]}


def _subsample(probe: dict[str, np.ndarray], size: int | None, seed: int) -> dict[str, np.ndarray]:
    n = len(probe["obs"])
    if size is None or n <= size:
        return probe
    idx = np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
    return {k: v[idx] for k, v in probe.items()}


# --------------------------------------------------------------------------------------------
# score()
# --------------------------------------------------------------------------------------------


class ScoringInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`score`: carries the partial table (``table``, ``done`` of ``total``
    checkpoints) so a caller can keep what was scored."""

    def __init__(self, table, done: int, total: int):
        super().__init__(f"interrupted after {done} of {total} checkpoints")
        self.table, self.done, self.total = table, done, total


def score(
    paths: str | pathlib.Path | Iterable[str | pathlib.Path],
    *,
    reference: str | None = None,
    probe: str | pathlib.Path | None = None,
    probe_size: int | None = 4096,
    seed: int = 0,
    block: int = M.DEFAULT_BLOCK,
    progress: ProgressFn | None = None,
    cache: bool = True,
    roles: tuple[str, ...] | None = None,
) -> ScoreTable:
    """Scores every complete checkpoint of the given runs (or folders of runs).

    Args:
      paths: run directories, or directories searched recursively for ``run.json``.
      reference: ``RUN_DIR[@STEP]`` used for CKA / q_corr by every run; default: each run's
        own last usable checkpoint (retrospective statistics: see :func:`gatekit.metrics.timing`).
      probe: an ``.npz`` (obs, action, goal) shared by all runs; default: each run's
        ``probe.npz``, else its reference checkpoint's sample (future goals as positives).
      probe_size: subsample the probe to at most this many rows (None: all; else >= 2).
      seed: seeds the probe subsample (same seed, same table).
      block: row block for the pairwise metrics (memory O(block * n)).
      progress: called as ``progress(done, total, description)`` after each checkpoint.
      cache: reuse a run's rows scored before with the same checkpoints and settings, and keep
        newly scored ones (:mod:`gatekit.io.cache`: where, what the key covers, how to clear).
      roles: score only runs of these roles (run.json ``role``; absent: teacher), e.g.
        ``("teacher",)`` for ``select``, which would drop the rest (a race's students) anyway.

    Returns:
      A :class:`ScoreTable` (rows sorted by run, then step). Every unusable run or checkpoint,
      whatever the reason (unreadable, damaged, non-finite parameters or outputs, shapes that do
      not match the run's ``net``), is listed in ``table.problems`` and skipped; GatekitError
      only for bad arguments or when nothing at all is scorable.
    """
    if probe_size is not None and (isinstance(probe_size, bool) or not isinstance(probe_size, int) or probe_size < 2):
        raise GatekitError(f"probe_size must be an integer >= 2 (pairwise metrics need 2 rows), got {probe_size!r}")
    runs, problems = io.find_runs(paths)
    if roles is not None:
        kept = [r for r in runs if (r.config.get("role") or "teacher") in roles]
        if runs and not kept:
            raise GatekitError(f"no {' or '.join(roles)} runs among {len(runs)} run(s) under "
                               f"{', '.join(map(str, [paths] if isinstance(paths, (str, pathlib.Path)) else paths))}")
        runs = kept
    if cache:
        _check_cache_outside(runs)
    shared_ref = load_reference(reference) if reference else None
    shared_probe = io.read_npz(probe, required=("obs", "action", "goal")) if probe else None
    if shared_ref is not None:
        _check_finite(shared_ref.params, f"reference {reference}: parameters")
    plan = _plan(runs, problems)
    ctx = _Context(shared_ref, shared_probe, probe_size, seed, block)
    settings = _settings(probe, probe_size, reference, seed)
    cache_settings = {"statistics": list(METRIC_NAMES),
                      "probe": cache_io.fingerprint(pathlib.Path(probe)) if probe else None, "probe_size": probe_size,
                      "seed": seed, "block": block, "reference": reference,
                      "reference_files": cache_io.fingerprint(shared_ref.path) if shared_ref is not None else None}
    rows: list[dict] = []
    notes: list[str] = []
    count = _Count(sum(len(s) for _, s in plan), progress)
    try:
        for run, steps in plan:
            entry_key = cache_io.key(run, steps, cache_settings) if cache else None
            hit = cache_io.get(entry_key) if cache else None
            if hit is not None:  # the same files, the same settings: the same rows
                rows += hit["rows"]
                problems += [Problem(*p) for p in hit["problems"]]
                notes += hit["notes"]
                if hit.get("reference"):
                    settings["references_used"][str(run.path)] = hit["reference"]
                count.add(len(steps), f"{run.name} (cached)")
                continue
            run_start, problems_start, notes_start = len(rows), len(problems), len(notes)
            scored = _score_run(run, steps, ctx, rows, problems, notes, count, settings["references_used"])
            if cache and scored:  # a run skipped whole is not cached: its reason may lie outside its files
                cache_io.put(entry_key, {"rows": rows[run_start:], "problems": [[p.path, p.reason] for p in problems[problems_start:]],
                                         "notes": notes[notes_start:],
                                         "reference": settings["references_used"].get(str(run.path))})
    except KeyboardInterrupt:
        if not rows:
            raise
        rows.sort(key=lambda r: (r["run_path"], r["step"]))
        notes.append(f"interrupted (Ctrl-C) after {count.done} of {count.total} checkpoints: the table is partial")
        raise ScoringInterrupted(ScoreTable(rows=rows, problems=problems, settings=settings, notes=notes), count.done,
                                 count.total) from None
    if not rows:
        detail = "; ".join(map(str, problems)) or "no checkpoints"
        raise GatekitError(f"nothing to score: {detail}")
    rows.sort(key=lambda r: (r["run_path"], r["step"]))
    return ScoreTable(rows=rows, problems=problems, settings=settings, notes=notes)


@dataclasses.dataclass(frozen=True)
class _Context:
    """What every run of one :func:`score` call shares."""

    shared_ref: Any
    shared_probe: dict | None
    probe_size: int | None
    seed: int
    block: int


class _Count:
    """Checkpoints done out of ``total``, reported to ``progress``."""

    def __init__(self, total: int, progress: ProgressFn | None):
        self.total, self.done, self.progress = total, 0, progress

    def add(self, n: int, description: str | None = None) -> None:
        self.done += n
        if self.progress and description is not None:
            self.progress(self.done, self.total, description)


def _plan(runs, problems: list) -> list:
    """(run, complete steps) for every run with at least one; the others become problems."""
    plan = []
    for run in runs:
        steps, probs = io.list_checkpoints(run)
        problems += probs
        if steps:
            plan.append((run, steps))
        else:
            problems.append(Problem(str(run.path), "no complete checkpoint; run skipped"))
    return plan


def _settings(probe, probe_size, reference, seed) -> dict:
    """The table's ``settings``: how every column was computed."""
    return {
        "probe": str(probe) if probe else ("online statistics: each checkpoint's own sample (or the run's probe.npz); "
                                           "CKA / q_corr: run probe.npz, else the reference checkpoint's sample"),
        "probe_size": probe_size,
        "reference": reference or "last usable checkpoint of each run",
        "seed": seed,
        "rank_eps": M.RANK_EPS,
        "uniformity_t": M.UNIFORMITY_T,
        "cka": "linear, feature space, column-centered",
        "q_corr": "spearman over positive + one shifted negative pair per probe row",
        "prev": "cka_sa_prev, cka_goal_prev, q_corr_prev: against the previous usable checkpoint, "
                "on this checkpoint's own sample (online)",
        "references_used": {},
    }


def _score_run(run, steps, ctx: _Context, rows: list, problems: list, notes: list, count: _Count,
               references: dict) -> bool:
    """Scores one run's ``steps`` into ``rows`` (its problems and notes appended) and records the
    reference it used in ``references`` (``RUN@STEP``); False when the whole run was skipped (a
    problem says why: e.g. its network family is not installed)."""
    try:
        family = _family(run)
        tau = run.tau
        run_probe = ctx.shared_probe if ctx.shared_probe is not None else io.load_probe(run)
        from gatekit import networks

        if networks.spec(run.family).needs_probe and run_probe is None:
            raise GatekitError(f"family {run.family!r} stores outputs on a fixed probe: the run needs "
                               f"{io.PROBE_NPZ} (gatekit.io.write_probe)")
    except Exception as e:  # any failure in per-run setup skips this run only
        problems.append(Problem(str(run.path), f"{plain_reason(e)}; run skipped"))
        count.add(len(steps))
        return False
    fixed_probe = run_probe is not None
    ref, ref_repr, run_probe = _usable_reference(run, steps, family, ctx.shared_ref, run_probe,
                                                 ctx.probe_size, ctx.seed, problems, notes)
    if ref is None:
        problems.append(Problem(str(run.path), "no usable reference checkpoint; run skipped"))
        count.add(len(steps))
        return False
    references[str(run.path)] = f"{ref.run.path}@{ref.step}"

    def load(step):
        return ref if (ref.run.path == run.path and ref.step == step) else io.load_checkpoint(run, step)

    run_start = len(rows)
    prev = None  # the previous *usable* checkpoint's params: drift statistics
    written_elsewhere: dict[int, bool] = {}  # step -> written under another run.json
    unverified: list[int] = []  # steps whose meta records no checksums
    # Restoring checkpoint i+1 (Orbax, mostly waiting on files) overlaps scoring checkpoint i.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(load, steps[0])
        for i, step in enumerate(steps):
            interrupts.check()
            current = pending
            pending = pool.submit(load, steps[i + 1]) if i + 1 < len(steps) else None
            t0 = time.perf_counter()
            try:
                ckpt = current.result()
                row = _score_checkpoint(ckpt, family, run_probe, ref_repr, tau, ctx.block, prev, fixed_probe)
            except Exception as e:  # noqa: BLE001 - any failure of one checkpoint skips only it
                problems.append(Problem(str(run.checkpoint_dir / str(step)), f"{plain_reason(e)}; skipped"))
            else:
                row["score_seconds"] = time.perf_counter() - t0
                rows.append(row)
                written_elsewhere[step] = io.run_changed_since(ckpt)
                if not isinstance(ckpt.meta, dict) or not isinstance(ckpt.meta.get("checksums"), dict):
                    unverified.append(step)
                prev = ckpt.params
            count.add(1, f"{run.name}@{step}")
    _check_run_json(run, rows, run_start, written_elsewhere, problems, notes)
    if unverified:  # missing checksums are a visible state, never a trusted one
        notes.append(f"{run.path}: {len(unverified)} checkpoint(s) carry no checksums (an older or another writer, or "
                     f"stripped): their content cannot be verified, e.g. step {unverified[0]}")
    return True


def _check_finite(tree, what: str) -> None:
    """Raises GatekitError naming the first leaf of ``tree`` with NaN or Inf."""
    import jax

    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        arr = np.asarray(leaf)
        if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
            name = "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)
            bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
            raise GatekitError(f"{what}: {bad} non-finite value(s) (NaN or Inf) in {name}")


_WIDTHS = {"obs": "obs_dim", "action": "action_dim", "goal": "goal_dim", "future_goal": "goal_dim"}


def _check_widths(arrays: dict[str, np.ndarray], net: dict, what: str) -> None:
    """Sample / probe arrays must be [n, width] with the widths run.json's net declares."""
    for key, dim in _WIDTHS.items():
        if key not in arrays:
            continue
        a = np.asarray(arrays[key])
        if a.ndim != 2 or a.shape[0] < 2:
            raise GatekitError(f"{what} {key!r} has shape {a.shape}; expected [n >= 2, {net.get(dim)}]")
        if dim in net and a.shape[1] != net[dim]:
            raise GatekitError(f"{what} {key!r} has width {a.shape[1]} but run.json net.{dim} is {net[dim]}")
        if not np.all(np.isfinite(a)):
            raise GatekitError(f"{what} {key!r} holds non-finite values (NaN or Inf)")


def _usable_reference(run, steps, family, shared_ref, run_probe, probe_size, seed, problems, notes):
    """The reference checkpoint, its representations on the run's probe, and the probe.

    With no shared reference: the newest checkpoint that loads, has finite parameters and gives
    finite representations; a bad newer one is reported and the next older one used (noted)."""
    candidates = [shared_ref] if shared_ref is not None else list(reversed(steps))
    for cand in candidates:
        where = str(run.checkpoint_dir / str(cand)) if not isinstance(cand, io.Checkpoint) else str(cand.path)
        try:
            ref = cand if isinstance(cand, io.Checkpoint) else io.load_checkpoint(run, cand)
            from gatekit import networks

            networks.check_params(ref.run.family, ref.params)
            _check_finite(ref.params, "parameters")
            probe = run_probe if run_probe is not None else probe_from_sample(ref.sample, source=where)
            _check_widths(probe, run.net, "probe")
            probe = _subsample(probe, probe_size, seed)
            ref_family = family if ref.run.path == run.path else _family(ref.run)
            phi, psi = repr_on(ref_family, ref.params, probe)
            check_outputs({"sa representation": phi, "goal representation": psi}, "representations")
        except Exception as e:  # noqa: BLE001
            if shared_ref is not None:
                problems.append(Problem(str(run.path), f"reference {where} unusable for this run "
                                                       f"({plain_reason(e)}); run skipped"))
                return None, None, None
            problems.append(Problem(where, f"{plain_reason(e)}; skipped (not usable as reference)"))
            steps.remove(cand)
            continue
        if shared_ref is None and cand != candidates[0]:
            notes.append(f"{run.path}: the last checkpoint is unusable; CKA / q_corr use step {cand} as reference")
        return ref, (phi, psi), probe
    return None, None, None


def _check_cache_outside(runs) -> None:
    """GatekitError, before any work, when the score cache's folder lies inside a run to be scored
    (its entries would be written into the run, and change the run's own cache key)."""
    folder = cache_io.folder()
    if folder is None:
        return
    where = folder.resolve()
    for run in runs:
        home = run.path.resolve()
        if where == home or home in where.parents:
            raise GatekitError(f"{cache_io.ENV}={folder}: the score cache lies inside the run {run.path} being scored; "
                               f"point it outside every run (or set {cache_io.ENV}=0 to score without a cache)")
    from gatekit.io.files import owning_folder

    owner = owning_folder(where)
    if owner is not None:  # any other run or race: a cache never writes into a folder it does not own
        raise GatekitError(f"{cache_io.ENV}={folder}: the score cache lies inside {owner[0]} ({owner[1]}); point it "
                           f"outside every run (or set {cache_io.ENV}=0 to score without a cache)")


def _score_checkpoint(ckpt: io.Checkpoint, family, probe, ref_repr, tau: float, block: int, prev_params=None,
                      fixed_probe: bool = False) -> dict:
    sample = ckpt.sample
    missing = [k for k in ("obs", "action", "goal") if k not in sample]
    if missing:
        raise GatekitError(f"sample lacks {missing}")
    _check_widths(sample, ckpt.run.net, "sample")
    from gatekit import networks

    networks.check_params(ckpt.run.family, ckpt.params)
    _check_finite(ckpt.params, "parameters")
    online = checkpoint_statistics(family, ckpt.params, prev_params, sample, tau=tau, block=block,
                                   probe=probe if fixed_probe else None)
    # Retrospective: CKA / q_corr against the reference (by default the run's last checkpoint),
    # on the probe shared by every checkpoint of the run.
    phi, psi = repr_on(family, ckpt.params, probe)
    check_outputs({"sa representation": phi, "goal representation": psi}, "network outputs on the probe")
    identity = {"run": ckpt.run.name, "role": ckpt.run.config.get("role"), "seed": ckpt.run.config.get("seed"),
                "env": _env_name(ckpt.run.config)}
    row = checkpoint_row(ckpt.step, ckpt.meta, online, identity=identity,
                         retrospective=M.similarity_metrics(phi, psi, ref_repr, energy=family.energy),
                         planned_epochs=planned_epochs(ckpt.run.config))
    row["run_path"] = str(ckpt.run.path)
    return row


def _env_name(config: dict) -> str | None:
    env = config.get("env")
    if isinstance(env, dict):
        return env.get("name")
    return env if isinstance(env, str) else None


def action_distances(run_path, steps: Iterable[int], *, probe_size: int = 512, seed: int = 0) -> np.ndarray:
    """[C, C] action distances (:func:`gatekit.metrics.action_distances`) between the checkpoints of
    the run at ``steps``, on the run's probe (its ``probe.npz``, else its last checkpoint's sample),
    subsampled to ``probe_size`` rows: the GP race's kernel (``gatekit race --strategy gp``)."""
    from gatekit.statistics import policy_on

    run = io.read_run(run_path)
    steps = [int(s) for s in steps]
    if not steps:
        raise GatekitError(f"{run_path}: no checkpoints to measure distances between")
    probe = io.load_probe(run)
    if probe is None:
        probe = probe_from_sample(io.load_checkpoint(run, steps[-1], items=("sample",)).sample,
                                  source=str(run.checkpoint_dir / str(steps[-1])))
    probe = _subsample(probe, probe_size, seed)
    family = _family(run)
    mus = []
    for s in steps:
        params = io.load_checkpoint(run, s, items=("params",)).params
        _check_finite(params, f"{run.checkpoint_dir / str(s)}: parameters")
        mu, _ = policy_on(family, params, probe)
        check_outputs({"policy mean": mu}, f"{run.checkpoint_dir / str(s)}")
        mus.append(mu)
    return M.action_distances(np.stack(mus))

"""gatekit benchmarks: metric cost vs NumPy/scikit-learn references, scoring throughput, training speed.

    python benchmarks/run.py                 # everything (about 10-15 minutes on 2 CPU cores)
    python benchmarks/run.py --only metrics  # or scoring / training
    python benchmarks/run.py --quick         # smaller n and fewer checkpoints (a minute or two)

Writes ``benchmarks/results/results.json`` and ``benchmarks/results/results.md`` and prints the
markdown. Memory is peak *traced* allocation (tracemalloc sees NumPy buffers), so it measures the
algorithm's working set, not the interpreter. A reference whose O(n^2) working set would exceed
``--ref-budget-gb`` is not run and is marked as such.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pathlib
import platform
import shutil
import sys
import tempfile
import time
import tracemalloc

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"


def measure(fn, repeat: int = 1):
    """(result, best wall seconds, peak traced MiB)."""
    best, peak, out = float("inf"), 0.0, None
    for _ in range(repeat):
        gc.collect()
        tracemalloc.start()
        tracemalloc.reset_peak()
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        peak = max(peak, tracemalloc.get_traced_memory()[1] / 2**20)
        tracemalloc.stop()
        best = min(best, dt)
    return out, best, peak


# --------------------------------------------------------------------------------------------
# References: the straightforward NumPy / scikit-learn versions a user would otherwise write
# --------------------------------------------------------------------------------------------


def ref_rank(z):
    s = np.linalg.svd(z, compute_uv=False)
    p = s / s.sum() + 1e-7
    return float(np.exp(-(p * np.log(p)).sum()))


def ref_uniformity(x):
    from scipy.spatial.distance import pdist

    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return float(np.log(np.mean(np.exp(-2 * pdist(x, "sqeuclidean")))))


def ref_cka(x, y):
    n = len(x)
    h = np.eye(n) - 1.0 / n
    k, l = h @ (x @ x.T) @ h, h @ (y @ y.T) @ h
    return float((k * l).sum() / np.sqrt((k * k).sum() * (l * l).sum()))


def ref_logits(x, y):
    return -((x[:, None, :] - y[None, :, :]) ** 2).sum(-1) if len(x) <= 2048 else -(
        (x * x).sum(1)[:, None] + (y * y).sum(1)[None] - 2 * x @ y.T)


def ref_infonce(x, y):
    from scipy.special import logsumexp

    lg = ref_logits(x, y)
    return float(np.mean(logsumexp(lg, axis=1) - np.diag(lg)))


def ref_acc(x, y):
    return float(np.mean(np.argmax(ref_logits(x, y), axis=1) == np.arange(len(x))))


def bench_metrics(ns, ds, budget_gb):
    from sklearn.metrics import roc_auc_score, roc_curve

    from gatekit import gate
    from gatekit import metrics as M

    rows = []
    rng = np.random.default_rng(0)
    for d in ds:
        for n in ns:
            x = rng.normal(size=(n, d))
            y = 0.5 * x + rng.normal(size=(n, d))
            n2_gb = n * n * 8 / 2**30
            cases = [
                ("effective_rank", lambda: M.effective_rank(x), lambda: ref_rank(x), n * d * 8 / 2**30),
                ("uniformity", lambda: M.uniformity(x), lambda: ref_uniformity(x), 1.5 * n2_gb),
                ("linear_cka", lambda: M.linear_cka(x, y), lambda: ref_cka(x, y), 5 * n2_gb),
                ("linear_cka_debiased", lambda: M.linear_cka(x, y, debiased=True), None, 0),
                ("infonce", lambda: M.infonce(x, y), lambda: ref_infonce(x, y), 3 * n2_gb),
                ("contrastive_acc", lambda: M.contrastive_accuracy(x, y), lambda: ref_acc(x, y), 3 * n2_gb),
            ]
            if d == ds[0]:
                v = rng.normal(size=n)
                lab = (v + rng.normal(size=n) < 0).astype(int)
                cases.append(("roc_fit (AUC + Youden)", lambda: gate.fit_threshold(v, lab, n_boot=0).auc,
                              lambda: (roc_curve(lab, -v), roc_auc_score(lab, -v))[1], 0))
            for name, ours, ref, ref_gb in cases:
                val, t, mem = measure(ours)
                row = {"metric": name, "n": n, "d": d, "gatekit_s": t, "gatekit_peak_mib": mem}
                if ref is None:
                    row["reference"] = "none (no common reference)"
                elif ref_gb > budget_gb:
                    row["reference"] = f"not run: needs ~{ref_gb:.1f} GiB (O(n^2))"
                else:
                    rval, rt, rmem = measure(ref)
                    row.update(reference_s=rt, reference_peak_mib=rmem, time_ratio=rt / t,
                               memory_ratio=rmem / max(mem, 1e-9), abs_diff=abs(float(val) - float(rval)))
                rows.append(row)
                print(f"  metrics {name:24s} n={n:6d} d={d:3d}  gatekit {t:8.3f}s {mem:9.1f} MiB"
                      + (f"  ref {row['reference_s']:8.3f}s {row['reference_peak_mib']:9.1f} MiB" if "reference_s" in row
                         else f"  ref {row.get('reference')}"), flush=True)
    return rows


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------


def write_fake_run(path, n_ckpt, depth, width, n_sample=1024):
    """A run of random-init crl networks (real Orbax checkpoints, real shapes)."""
    import jax

    from gatekit import networks
    from gatekit.io import RunWriter

    net = {"obs_dim": 29, "goal_dim": 2, "action_dim": 8, "goal_indices": [0, 1], "depth": depth,
           "width": width, "rep_dim": 64}
    fam = networks.build("crl", net)
    rng = np.random.default_rng(0)
    base = jax.tree.map(np.asarray, fam.init(jax.random.PRNGKey(0)))
    with RunWriter(path, config={"family": "crl", "net": net, "seed": 0, "role": "teacher"}) as w:
        for i in range(n_ckpt):
            params = jax.tree.map(lambda a: a * (1 + 0.01 * i), base)
            sample = {"obs": rng.normal(size=(n_sample, 29)).astype(np.float32),
                      "action": rng.uniform(-1, 1, (n_sample, 8)).astype(np.float32),
                      "goal": rng.normal(size=(n_sample, 2)).astype(np.float32),
                      "future_goal": rng.normal(size=(n_sample, 2)).astype(np.float32)}
            w.save(1000 * (i + 1), params=params, meta={"epoch": i + 1}, sample=sample)
    return sum(a.size for a in jax.tree.leaves(base))


def bench_scoring(configs, tmp):
    import gatekit
    from gatekit import io
    from gatekit import metrics as M
    from gatekit import scoring

    rows = []
    for n_ckpt, depth, width in configs:
        path = pathlib.Path(tmp) / f"d{depth}_w{width}_n{n_ckpt}"
        t0 = time.perf_counter()
        n_params = write_fake_run(path, n_ckpt, depth, width)
        t_write = time.perf_counter() - t0
        scoring._JITTED.clear()
        t0 = time.perf_counter()
        table = gatekit.score(path)
        total = time.perf_counter() - t0
        per = np.array(table.column("score_seconds"))
        run = io.read_run(path)
        steps = io.list_checkpoints(run)[0]
        t0 = time.perf_counter()
        for s in steps:
            io.load_checkpoint(run, s)
        t_io = (time.perf_counter() - t0) / len(steps)
        rng = np.random.default_rng(0)
        phi, psi = rng.normal(size=(1024, 64)), rng.normal(size=(1024, 64))
        _, t_metrics, _ = measure(lambda: (M.representation_metrics(phi, psi, reference=(phi, psi)),
                                           M.policy_metrics(rng.normal(size=(1024, 8)), rng.normal(size=(1024, 8)))))
        rest = per[1:] if len(per) > 1 else per
        row = {"checkpoints": n_ckpt, "depth": depth, "width": width, "params": n_params,
               "write_s": t_write, "score_total_s": total, "first_ckpt_s": float(per[0]),
               "median_ckpt_s_after_first": float(np.median(rest)),
               "ckpt_s_first_half_vs_second_half": [float(np.median(rest[: len(rest) // 2 or 1])),
                                                   float(np.median(rest[len(rest) // 2:]))],
               "io_s_per_ckpt": t_io, "metrics_s_per_ckpt": t_metrics,
               # IO runs on score()'s prefetch thread, overlapped with the forward pass and metrics
               "forward_s_per_ckpt_est": float(np.median(rest)) - t_metrics,
               "compiled_shapes": sum(f._cache_size() for _, *fns in scoring._JITTED.values() for f in fns)}
        rows.append(row)
        print(f"  scoring {n_ckpt:4d} ckpts d={depth} w={width}: total {total:7.1f}s  first {per[0]:.2f}s  "
              f"median after {row['median_ckpt_s_after_first']:.3f}s  (io {t_io:.3f}s, metrics {t_metrics:.3f}s)", flush=True)
        shutil.rmtree(path)
    return rows


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def trainer_with_data(kw: dict):
    """(cfg, env, Trainer, fresh state, a buffer holding one collection) for a config dict."""
    import jax

    from training import buffer as rb
    from training import envs
    from training.config import TrainConfig
    from training.trainer import Trainer

    cfg = TrainConfig(**kw)
    env = envs.make(cfg.env, **cfg.env_args())
    tr = Trainer(cfg, env)
    state = tr.init_state(jax.random.PRNGKey(0))
    obs, act, goal, _ = tr.collect(state.params["actor"], jax.random.PRNGKey(1), num=cfg.num_envs, deterministic=False)
    return cfg, env, tr, state, rb.insert(tr.init_buffer(), obs, act, goal)


def bench_training(cfg_kwargs, iters=2):
    import jax
    import jax.numpy as jnp

    from training import buffer as rb

    rows = []
    for label, kw in cfg_kwargs:
        cfg, env, tr, state, buf = trainer_with_data(kw)
        lam = jnp.float32(0.0)
        # fused: one jitted epoch = scan over iterations (collect + scan over SGD steps)
        t0 = time.perf_counter()
        jax.block_until_ready(tr.training_epoch(state, buf, jax.random.PRNGKey(2), lam, None))
        compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(iters):
            state, buf, m = tr.training_epoch(state, buf, jax.random.PRNGKey(3 + i), lam, None)
        jax.block_until_ready(m)
        fused = (time.perf_counter() - t0) / iters
        # reference: the same update from a Python loop (jitted single env step, jitted single SGD step)
        pol = jax.jit(lambda p, s, k: tr.nets.policy(p, s.obs, s.goal))
        vstep = jax.jit(jax.vmap(env.step))
        vreset = jax.jit(jax.vmap(env.reset))
        sgd = jax.jit(tr.sgd_step)
        from training.losses import tanh_gaussian_sample

        sample_a = jax.jit(tanh_gaussian_sample)

        def ref_iteration(state, buf, key):
            k_reset, k_sgd = jax.random.split(key)
            s = vreset(jax.random.split(k_reset, cfg.num_envs))
            os_, as_ = [], []
            for t in range(env.episode_length):
                mu, ls = pol(state.params["actor"], s, None)
                a, _ = sample_a(mu, ls, jax.random.fold_in(key, t))
                os_.append(s.obs)
                as_.append(a)
                s = vstep(s, a)
            buf = rb.insert(buf, jnp.stack(os_, 1), jnp.stack(as_, 1), s.goal)
            for k in jax.random.split(k_sgd, cfg.updates_per_iteration):
                state, _ = sgd(state, buf, k, lam, None)
            return state, buf

        state, buf = ref_iteration(state, buf, jax.random.PRNGKey(9))  # warm-up / compile
        jax.block_until_ready(state.params)
        t0 = time.perf_counter()
        for i in range(iters * cfg.iterations_per_epoch):
            state, buf = ref_iteration(state, buf, jax.random.PRNGKey(20 + i))
        jax.block_until_ready(state.params)
        ref = (time.perf_counter() - t0) / iters
        env_steps = cfg.iterations_per_epoch * cfg.num_envs * env.episode_length
        updates = cfg.iterations_per_epoch * cfg.updates_per_iteration
        # env only: rollouts with the policy, no learning (fused scan)
        t0 = time.perf_counter()
        for i in range(iters):
            out = tr.collect(state.params["actor"], jax.random.PRNGKey(50 + i), num=cfg.num_envs, deterministic=False)
        jax.block_until_ready(out)
        t_collect = (time.perf_counter() - t0) / iters
        row = {"config": label, "env": cfg.env, "depth": cfg.depth, "width": cfg.width, "num_envs": cfg.num_envs,
               "compile_s": compile_s, "fused_env_steps_per_s": env_steps / fused, "fused_updates_per_s": updates / fused,
               "reference_env_steps_per_s": env_steps / ref, "reference_updates_per_s": updates / ref,
               "speedup": ref / fused, "rollout_only_env_steps_per_s": cfg.num_envs * env.episode_length / t_collect}
        rows.append(row)
        print(f"  training {label}: fused {row['fused_env_steps_per_s']:,.0f} env-steps/s "
              f"({row['fused_updates_per_s']:,.0f} updates/s); reference loop {row['reference_env_steps_per_s']:,.0f} "
              f"env-steps/s; speedup x{row['speedup']:.1f}; rollout only {row['rollout_only_env_steps_per_s']:,.0f}/s",
              flush=True)
    return rows


def bench_flops(cfg_kwargs, steps: int = 64, n: int = 2048):
    """The teacher update's achieved FLOP/s against a large matmul's, measured in the same run
    (a ratio, so the machine's load cancels). FLOPs and bytes come from XLA's cost analysis of
    one compiled SGD step; time from a jitted scan of ``steps`` steps."""
    import jax
    import jax.numpy as jnp


    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    mm = jax.jit(lambda x: x @ x)
    jax.block_until_ready(mm(a))
    reps = 5
    t0 = time.perf_counter()
    for _ in range(reps):
        out = mm(a)
    jax.block_until_ready(out)
    matmul_flops = 2 * n**3 / ((time.perf_counter() - t0) / reps)
    rows = []
    for label, kw in cfg_kwargs:
        cfg, env, tr, state, buf = trainer_with_data(kw)
        lam = jnp.float32(0.0)
        cost = jax.jit(tr.sgd_step).lower(state, buf, jax.random.PRNGKey(2), lam, None).compile().cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        flops, nbytes = float(cost.get("flops", 0.0)), float(cost.get("bytes accessed", 0.0))

        @jax.jit
        def many(st, key):
            return jax.lax.scan(lambda c, k: tr.sgd_step(c, buf, k, lam, None), st, jax.random.split(key, steps))[0]

        jax.block_until_ready(many(state, jax.random.PRNGKey(3)))
        t0 = time.perf_counter()
        jax.block_until_ready(many(state, jax.random.PRNGKey(4)))
        per_step = (time.perf_counter() - t0) / steps
        row = {"config": label, "depth": cfg.depth, "width": cfg.width, "batch": cfg.batch_size,
               "flops_per_update": flops, "bytes_per_update": nbytes, "arithmetic_intensity": flops / max(nbytes, 1),
               "update_s": per_step, "update_flops_per_s": flops / per_step, "matmul_flops_per_s": matmul_flops,
               "fraction_of_matmul": flops / per_step / matmul_flops}
        rows.append(row)
        print(f"  flops {label}: {flops / 1e6:,.1f} MFLOP/update in {per_step * 1e3:.2f} ms = "
              f"{row['update_flops_per_s'] / 1e9:.2f} GFLOP/s; {n}x{n} matmul {matmul_flops / 1e9:.1f} GFLOP/s; "
              f"ratio {row['fraction_of_matmul']:.3f}; intensity {row['arithmetic_intensity']:.1f} FLOP/byte", flush=True)
    return rows


# --------------------------------------------------------------------------------------------


def to_markdown(res) -> str:
    out = [f"Machine: {res['machine']}", ""]
    if res.get("metrics"):
        out += ["### Metrics (gatekit vs reference, same run)", "",
                "| metric | n | d | gatekit s | gatekit MiB | ref s | ref MiB | ref/gatekit time | ref/gatekit mem | abs diff |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for r in res["metrics"]:
            if "reference_s" in r:
                out.append(f"| {r['metric']} | {r['n']} | {r['d']} | {r['gatekit_s']:.3f} | {r['gatekit_peak_mib']:.1f} | "
                           f"{r['reference_s']:.3f} | {r['reference_peak_mib']:.1f} | {r['time_ratio']:.2f} | "
                           f"{r['memory_ratio']:.1f} | {r['abs_diff']:.1e} |")
            else:
                out.append(f"| {r['metric']} | {r['n']} | {r['d']} | {r['gatekit_s']:.3f} | {r['gatekit_peak_mib']:.1f} | "
                           f"{r['reference']} | | | | |")
    if res.get("scoring"):
        out += ["", "### `gatekit score` (real Orbax checkpoints of random-init crl networks, 1024-row sample / probe)", "",
                "| checkpoints | depth | width | params | total s | first ckpt s | median s after first | first half / second half | IO s (overlapped) | metrics s | forward s (est.) | compiled shapes |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in res["scoring"]:
            a, b = r["ckpt_s_first_half_vs_second_half"]
            out.append(f"| {r['checkpoints']} | {r['depth']} | {r['width']} | {r['params']:,} | {r['score_total_s']:.1f} | "
                       f"{r['first_ckpt_s']:.2f} | {r['median_ckpt_s_after_first']:.3f} | {a:.3f} / {b:.3f} | "
                       f"{r['io_s_per_ckpt']:.3f} | {r['metrics_s_per_ckpt']:.3f} | {r['forward_s_per_ckpt_est']:.3f} | {r['compiled_shapes']} |")
    if res.get("training"):
        out += ["", "### Teacher training speed (fused jit/scan epoch vs a plain Python loop of jitted steps)", "",
                "| config | env | depth x width | envs | fused env-steps/s | fused updates/s | reference env-steps/s | reference updates/s | speedup | rollout-only env-steps/s | compile s |",
                "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in res["training"]:
            out.append(f"| {r['config']} | {r['env']} | {r['depth']}x{r['width']} | {r['num_envs']} | "
                       f"{r['fused_env_steps_per_s']:,.0f} | {r['fused_updates_per_s']:,.0f} | {r['reference_env_steps_per_s']:,.0f} | "
                       f"{r['reference_updates_per_s']:,.0f} | {r['speedup']:.1f}x | {r['rollout_only_env_steps_per_s']:,.0f} | {r['compile_s']:.1f} |")
    if res.get("flops"):
        out += ["", "### The teacher update's FLOP rate against a large matmul (same run)", "",
                "| config | batch | MFLOP / update | MB accessed / update | FLOP / byte | ms / update | update GFLOP/s | matmul GFLOP/s | ratio |",
                "|---|---|---|---|---|---|---|---|---|"]
        for r in res["flops"]:
            out.append(f"| {r['config']} | {r['batch']} | {r['flops_per_update'] / 1e6:,.1f} | {r['bytes_per_update'] / 1e6:,.1f} | "
                       f"{r['arithmetic_intensity']:.1f} | {r['update_s'] * 1e3:.2f} | {r['update_flops_per_s'] / 1e9:.2f} | "
                       f"{r['matmul_flops_per_s'] / 1e9:.1f} | {r['fraction_of_matmul']:.3f} |")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["metrics", "scoring", "training", "flops"], action="append")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--ref-budget-gb", type=float, default=3.0)
    ap.add_argument("--out", type=pathlib.Path, default=RESULTS)
    args = ap.parse_args()
    parts = args.only or ["metrics", "scoring", "training", "flops"]
    import jax

    res = {"machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.python_version()}, "
                      f"jax {jax.__version__} on {jax.default_backend()}", "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    if "metrics" in parts:
        print("metrics:")
        ns = [1000, 4000] if args.quick else [1000, 4000, 16000, 64000]
        res["metrics"] = bench_metrics(ns, [64, 256], args.ref_budget_gb)
    if "scoring" in parts:
        print("scoring:")
        cfgs = [(10, 4, 256)] if args.quick else [(10, 4, 256), (50, 4, 256), (200, 4, 256), (50, 8, 256),
                                                   (50, 4, 512), (50, 8, 512)]
        with tempfile.TemporaryDirectory() as tmp:
            res["scoring"] = bench_scoring(cfgs, tmp)
    if "training" in parts:
        print("training:")
        common = dict(env="pointmaze", env_kwargs=(("maze", "u"),), rep_dim=32, num_envs=32, iterations_per_epoch=4,
                      updates_per_iteration=64)
        res["training"] = bench_training([("quickstart teacher", dict(common, depth=8, width=64)),
                                          ("depth 4, width 256", dict(common, depth=4, width=256))],
                                         iters=1 if args.quick else 2)
    if "flops" in parts:
        print("flops:")
        common = dict(env="pointmaze", env_kwargs=(("maze", "u"),), rep_dim=32, num_envs=32)
        res["flops"] = bench_flops([("quickstart teacher", dict(common, depth=8, width=64)),
                                    ("depth 4, width 256", dict(common, depth=4, width=256)),
                                    ("depth 8, width 256, batch 1024", dict(common, depth=8, width=256, batch_size=1024))])
    args.out.mkdir(parents=True, exist_ok=True)
    if (args.out / "results.json").exists() and args.only:  # a partial run keeps the other sections
        res = {**json.loads((args.out / "results.json").read_text()), **res}
    (args.out / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    md = to_markdown(res)
    (args.out / "results.md").write_text(md)
    print("\n" + md)


if __name__ == "__main__":
    main()

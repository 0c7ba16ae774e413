"""A/B of the all-pairs critic in one student training epoch (the quick start's student, with a
teacher): the direct broadcast form (x_i - y_j)^2 against one matmul, compiled side by side in
one process and timed alternately, so a busy machine slows both alike.

    python benchmarks/logits_ab.py
"""
import time, jax, jax.numpy as jnp
from training import buffer as rb, envs, losses
from training.calibrate import POINTMAZE_STUDENT as cfg, POINTMAZE_TEACHER
from training.trainer import Trainer
from gatekit import networks
fast = networks.pairwise_energy
def slow(x, y, kind="neg_l2_sq"):
    return networks.energy(x[:, None, :], y[None, :, :], kind)
env = envs.make(cfg.env, **cfg.env_args())
tt = Trainer(POINTMAZE_TEACHER, env)
ta = tt.init_state(jax.random.PRNGKey(1)).params["actor"]
fns = {}
for name, f in (("broadcast", slow), ("matmul", fast)):
    losses.pairwise_energy = f
    tr = Trainer(cfg, env, tt.nets)
    st = tr.init_state(jax.random.PRNGKey(0)); buf = tr.init_buffer()
    o, a, g, _ = tr.collect(st.params["actor"], jax.random.PRNGKey(2), num=cfg.num_envs, deterministic=False)
    buf = rb.insert(buf, o, a, g)
    ep = lambda k, tr=tr, st=st, buf=buf: tr.training_epoch(st, buf, k, jnp.float32(1.0), ta)[2]["critic_loss"]
    jax.block_until_ready(ep(jax.random.PRNGKey(3)))
    fns[name] = ep
res = {n: [] for n in fns}
for i in range(4):
    for n, ep in fns.items():
        t = time.perf_counter(); jax.block_until_ready(ep(jax.random.PRNGKey(10 + i))); res[n].append(time.perf_counter() - t)
for n, ts in res.items(): print(n, "epoch (256 updates + 4 collections):", [round(t, 2) for t in ts], "min", round(min(ts), 2))
print("speedup", round(min(res["broadcast"]) / min(res["matmul"]), 2))

"""GateHook in a hand-written Flax / optax loop with a plain Orbax CheckpointManager.

A toy contrastive task stands in for your trainer: an encoder pair phi(s, a), psi(g) learns by
InfoNCE that g is where (s, a) leads. At every save the loop computes an *online* statistic
(contrastive accuracy on a fixed held-out batch, with gatekit.metrics), asks the hook whether
the gate holds, and saves the hook's state *with* the checkpoint, so a resumed run continues the
count instead of restarting it. Orbax's ``should_save_fn`` gets ``hook.should_save`` so that
nothing is saved after the gate held.

    python examples/own_loop.py --out runs/own_loop --epochs 30      # stops at the gate
    python examples/own_loop.py --out runs/own_loop --epochs 30      # again: resumes, already stopped
"""

from __future__ import annotations

import argparse
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import linen as nn

from gatekit import metrics
from gatekit.hooks import GateHook


class Encoder(nn.Module):
    width: int = 64
    out: int = 16

    @nn.compact
    def __call__(self, x):
        x = nn.swish(nn.Dense(self.width)(x))
        return nn.Dense(self.out)(nn.swish(nn.Dense(self.width)(x)))


def data(key, n):
    """(s, a) -> g = a nonlinear map of (s, a) plus noise."""
    k1, k2, k3 = jax.random.split(key, 3)
    s, a = jax.random.normal(k1, (n, 4)), jax.random.uniform(k2, (n, 2), minval=-1, maxval=1)
    g = jnp.tanh(s[:, :2] + a) + 0.05 * jax.random.normal(k3, (n, 2))
    return jnp.concatenate([s, a], 1), g


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/own_loop"))
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--steps-per-epoch", type=int, default=50)
    ap.add_argument("--threshold", type=float, default=0.5)
    args = ap.parse_args()

    phi, psi = Encoder(), Encoder()
    key = jax.random.PRNGKey(0)
    sa0, g0 = data(key, 2)
    params = {"phi": phi.init(key, sa0), "psi": psi.init(key, g0)}
    opt = optax.adam(1e-3)
    state = {"params": params, "opt": opt.init(params), "epoch": 0}
    held_sa, held_g = data(jax.random.PRNGKey(99), 512)  # fixed rows: the statistic is online and comparable
    hook = GateHook(metric="contrastive_acc", threshold=args.threshold, direction="above", patience=2)

    manager = ocp.CheckpointManager(
        args.out.absolute(), item_names=("state", "gate"),
        options=ocp.CheckpointManagerOptions(should_save_fn=hook.should_save, enable_async_checkpointing=False))
    if manager.latest_step() is not None:  # resume: training state *and* the hook's count
        step = manager.latest_step()
        restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(state),
                                                                 gate=ocp.args.JsonRestore()))
        state = restored["state"]
        hook = GateHook.from_state_dict(restored["gate"])
        print(f"resumed at epoch {int(state['epoch'])}; gate count {hook.count}, stopped: {hook.stopped}")

    def loss_fn(p, sa, g):
        logits = -jnp.sum((phi.apply(p["phi"], sa)[:, None] - psi.apply(p["psi"], g)[None]) ** 2, -1)
        return optax.softmax_cross_entropy_with_integer_labels(logits, jnp.arange(len(sa))).mean()

    @jax.jit
    def update(st, key):
        sa, g = data(key, 256)
        loss, grads = jax.value_and_grad(loss_fn)(st["params"], sa, g)
        upd, opt_state = opt.update(grads, st["opt"], st["params"])
        return {**st, "params": optax.apply_updates(st["params"], upd), "opt": opt_state}, loss

    while int(state["epoch"]) < args.epochs and not hook.stopped:
        for i in range(args.steps_per_epoch):
            state, loss = update(state, jax.random.fold_in(key, int(state["epoch"]) * 10_000 + i))
        state = {**state, "epoch": int(state["epoch"]) + 1}
        step = int(state["epoch"]) * args.steps_per_epoch
        acc = metrics.contrastive_accuracy(np.asarray(phi.apply(state["params"]["phi"], held_sa)),
                                           np.asarray(psi.apply(state["params"]["psi"], held_g)))
        stop = hook.update(step, {"contrastive_acc": acc})
        manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                   gate=ocp.args.JsonSave(hook.state_dict())))
        print(f"epoch {int(state['epoch'])} step {step}: loss {float(loss):.3f} contrastive_acc {acc:.3f} "
              f"gate {hook.count}/{hook.patience}" + ("  -> gate held: stop" if stop else ""))
    manager.wait_until_finished()
    manager.close()
    print(f"stopped at the gate (step {hook.stopped_step})" if hook.stopped else "trained to the end without the gate")


if __name__ == "__main__":
    main()

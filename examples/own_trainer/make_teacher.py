"""Writes a stand-in "JaxGCRL" teacher: checkpoints in JaxGCRL's save_params layout
(``step_N.pkl`` = pickled (alpha, actor, critic) params) for the toy task, the kind of folder a
JaxGCRL user already has. Its actor is trained by regression towards the toy task's expert (not by
CRL; its critic stays at initialization), so later checkpoints are better teachers.

    python examples/own_trainer/make_teacher.py --out runs/own/jaxgcrl_ckpts
"""

import argparse
import pathlib
import pickle  # JaxGCRL's own checkpoint format; gatekit reads it through an allow-list

import jax
import jax.numpy as jnp
import optax

import toy_env
from gatekit import networks

NET = dict(obs_dim=2, goal_dim=2, action_dim=2, h_dim=64, n_hidden=2, skip_connections=4, use_ln=False,
           use_relu=False, repr_dim=16, energy="neg_l2")
SAVE_AT = (0, 3, 6, 12, 25, 50)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=pathlib.Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    fam = networks.build("jaxgcrl", NET)
    params = fam.init(jax.random.PRNGKey(0))
    opt = optax.adam(3e-3)
    actor, state = params["actor"], opt.init(params["actor"])

    @jax.jit
    def update(actor, state, key):
        s, g = toy_env.sample(key, 256)

        def loss(a):
            mu, _ = fam.policy(a, s, g)
            return jnp.mean((jnp.tanh(mu) - toy_env.expert(s, g)) ** 2)

        grads = jax.grad(loss)(actor)
        upd, state = opt.update(grads, state)
        return optax.apply_updates(actor, upd), state

    key = jax.random.PRNGKey(1)
    for it in range(max(SAVE_AT) + 1):
        if it in SAVE_AT:
            layout = ({"log_alpha": jnp.asarray(0.0)}, actor,
                      {"sa_encoder": params["sa_encoder"], "g_encoder": params["goal_encoder"]})
            (args.out / f"step_{it * 1000}.pkl").write_bytes(pickle.dumps(jax.device_get(layout)))
        key, k = jax.random.split(key)
        actor, state = update(actor, state, k)
    print(f"wrote {len(SAVE_AT)} JaxGCRL-layout checkpoints to {args.out}")


if __name__ == "__main__":
    main()

"""Your student trainer, as gatekit race runs it (``--student-cmd``): it imports neither
``training`` nor anything of gatekit's racing; it reads the teacher checkpoint, distills a student,
measures it on your task and writes ``{out}/outcome.json``.

    python examples/own_trainer/distill.py --teacher RUN@STEP --seed 1000 --epochs 4 --out DIR

The student is a small MLP trained by behaviour cloning on the teacher's tanh(mean) at random
states of the toy task, ``epochs`` x 50 steps; its outcome is its success rate on 256 fixed
episodes (larger is better).
"""

import argparse
import json
import pathlib

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn

import toy_env
from gatekit import io as gio
from gatekit import networks


class Student(nn.Module):
    @nn.compact
    def __call__(self, s, g):
        x = jnp.concatenate([s, g], -1)
        for _ in range(2):
            x = nn.swish(nn.Dense(32)(x))
        return jnp.tanh(nn.Dense(2)(x))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--teacher", required=True, help="RUN@STEP")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--epochs", type=int, required=True)
    ap.add_argument("--out", type=pathlib.Path, required=True)
    args = ap.parse_args()
    run_dir, _, step = args.teacher.rpartition("@")
    run = gio.read_run(run_dir)
    teacher = gio.load_checkpoint(run, int(step))
    fam = networks.build(run.family, run.config["net"])
    student = Student()
    params = student.init(jax.random.PRNGKey(args.seed), jnp.zeros((1, 2)), jnp.zeros((1, 2)))
    opt = optax.adam(3e-3)
    state = opt.init(params)

    @jax.jit
    def update(params, state, key):
        s, g = toy_env.sample(key, 256)
        target = jnp.tanh(fam.policy(teacher.params["actor"], s, g)[0])
        grads = jax.grad(lambda p: jnp.mean((student.apply(p, s, g) - target) ** 2))(params)
        upd, state = opt.update(grads, state)
        return optax.apply_updates(params, upd), state

    key = jax.random.PRNGKey(args.seed + 1)
    for _ in range(args.epochs * 50):
        key, k = jax.random.split(key)
        params, state = update(params, state, k)
    outcome = toy_env.success(lambda s, g: student.apply(params, s, g), jax.random.PRNGKey(12345))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "outcome.json").write_text(json.dumps({"outcome": outcome}))


if __name__ == "__main__":
    main()

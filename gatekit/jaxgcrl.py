"""The ``jaxgcrl`` family and ``gatekit import jaxgcrl``: read JaxGCRL's CRL checkpoints.

JaxGCRL (Bortkiewicz et al.) saves ``(alpha_params, actor_params, critic_params)`` with
``pickle.dumps`` every epoch as ``step_N.pkl``; ``critic_params`` is ``{"sa_encoder", "g_encoder"}``.
Its networks (``agents/crl/networks.py``) are re-implemented here from their definition, with
the same Flax parameter names, so its parameters load unchanged:

* Encoder: ``n_hidden`` x (Dense(h_dim) -> LayerNorm if ``use_ln`` -> swish, or relu), a skip
  connection every ``skip_connections`` layers (``x = x + skip`` after layer i > 0 with
  i % skip == 0; the skip starts after layer 0), then Dense(repr_dim). sa input [state, action],
  goal input [goal].
* Actor: the same trunk on [state, goal] (JaxGCRL's CRL builds it without LayerNorm), then
  Dense(action) for the mean and Dense(action) -> tanh, scaled to [-5, 2], for log-std.
* Energies: ``norm`` = -sqrt(||x - y||^2 + 1e-6) (gatekit ``neg_l2``), ``l2`` = -||x - y||^2
  (``neg_l2_sq``), ``dot``. (JaxGCRL's ``cosine`` divides by batch-wide norms and is not supported.)

Pickles are read with :func:`gatekit.io.read_restricted_pickle` (allow-listed).
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
from typing import Any, Mapping

import numpy as np

from gatekit.errors import GatekitError
from gatekit.nettypes import JAXGCRL_NET_KEYS, Outputs

ENERGY_MAP = {"norm": "neg_l2", "l2": "neg_l2_sq", "dot": "dot"}
NET_KEYS = JAXGCRL_NET_KEYS


def _modules():
    import flax.linen as nn

    def trunk(x, depth, width, skip_every, use_ln, use_relu):
        act = nn.relu if use_relu else nn.swish
        skip = None
        for i in range(depth):
            x = nn.Dense(width)(x)
            if use_ln:
                x = nn.LayerNorm()(x)
            x = act(x)
            if skip_every:
                if i == 0:
                    skip = x
                if i > 0 and i % skip_every == 0:
                    x = x + skip
                    skip = x
        return x

    class Encoder(nn.Module):
        repr_dim: int
        width: int
        depth: int
        skip_every: int
        use_ln: bool
        use_relu: bool

        @nn.compact
        def __call__(self, x):
            x = trunk(x, self.depth, self.width, self.skip_every, self.use_ln, self.use_relu)
            return nn.Dense(self.repr_dim)(x)

    class Actor(nn.Module):
        action_size: int
        width: int
        depth: int
        skip_every: int
        use_relu: bool

        @nn.compact
        def __call__(self, x):
            x = trunk(x, self.depth, self.width, self.skip_every, False, self.use_relu)
            mean = nn.Dense(self.action_size)(x)
            log_std = nn.tanh(nn.Dense(self.action_size)(x))
            return mean, -5.0 + 0.5 * (2.0 - -5.0) * (log_std + 1)

    return Encoder, Actor


class JaxGCRLNetworks:
    """A gatekit family object for JaxGCRL's CRL networks (see the module docstring)."""

    def __init__(self, net: Mapping[str, Any]):
        Encoder, Actor = _modules()
        self.net = dict(net)
        if net["energy"] not in ENERGY_MAP.values():
            raise GatekitError(f"net.energy {net['energy']!r}: expected one of {sorted(ENERGY_MAP.values())}")
        self.energy = net["energy"]
        common = dict(width=int(net["h_dim"]), depth=int(net["n_hidden"]), skip_every=int(net["skip_connections"]),
                      use_relu=bool(net["use_relu"]))
        self.sa_encoder = Encoder(repr_dim=int(net["repr_dim"]), use_ln=bool(net["use_ln"]), **common)
        self.goal_encoder = Encoder(repr_dim=int(net["repr_dim"]), use_ln=bool(net["use_ln"]), **common)
        self.actor = Actor(action_size=int(net["action_dim"]), **common)

    def init(self, key) -> dict:
        import jax
        import jax.numpy as jnp

        n = self.net
        k1, k2, k3 = jax.random.split(key, 3)
        return {"actor": self.actor.init(k1, jnp.zeros((1, n["obs_dim"] + n["goal_dim"]))),
                "sa_encoder": self.sa_encoder.init(k2, jnp.zeros((1, n["obs_dim"] + n["action_dim"]))),
                "goal_encoder": self.goal_encoder.init(k3, jnp.zeros((1, n["goal_dim"])))}

    def policy(self, actor_params, obs, goal):
        import jax.numpy as jnp

        return self.actor.apply(actor_params, jnp.concatenate([obs, goal], -1))

    def apply(self, params, obs, action, goal):
        import jax.numpy as jnp

        mu, log_std = self.policy(params["actor"], obs, goal)
        return Outputs(mu=mu, log_std=log_std,
                       sa_repr=self.sa_encoder.apply(params["sa_encoder"], jnp.concatenate([obs, action], -1)),
                       goal_repr=self.goal_encoder.apply(params["goal_encoder"], goal))


@dataclasses.dataclass(frozen=True)
class ImportSettings:
    """The flags of ``gatekit import jaxgcrl``, mirroring JaxGCRL's CRL options."""

    obs_dim: int
    goal_dim: int
    action_dim: int
    h_dim: int = 256
    n_hidden: int = 2
    skip_connections: int = 4
    use_ln: bool = False
    use_relu: bool = False
    repr_dim: int = 64
    energy_fn: str = "norm"

    def net(self) -> dict:
        if self.energy_fn not in ENERGY_MAP:
            raise GatekitError(f"--energy-fn {self.energy_fn!r}: gatekit reads {sorted(ENERGY_MAP)} "
                               f"(JaxGCRL's 'cosine' uses batch-wide norms and is not supported)")
        for name in ("obs_dim", "goal_dim", "action_dim", "h_dim", "n_hidden", "repr_dim"):
            if getattr(self, name) < 1:
                raise GatekitError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.skip_connections < 0:
            raise GatekitError(f"--skip-connections must be >= 0, got {self.skip_connections}")
        d = {k: getattr(self, k) for k in ("obs_dim", "goal_dim", "action_dim", "h_dim", "n_hidden",
                                              "skip_connections", "use_ln", "use_relu", "repr_dim")}
        return {**d, "energy": ENERGY_MAP[self.energy_fn]}


def checkpoint_files(path) -> list[tuple[int, pathlib.Path]]:
    """(step, file) for one ``.pkl`` or a folder of ``step_N.pkl`` (sorted by step)."""
    path = pathlib.Path(path)
    if path.is_file():
        m = re.search(r"(\d+)", path.stem)
        return [(int(m.group(1)) if m else 0, path)]
    if not path.is_dir():
        raise GatekitError(f"{path}: no such file or folder")
    files = [(int(m.group(1)), p) for p in path.glob("*.pkl") if (m := re.fullmatch(r"step_(\d+)", p.stem))]
    if not files:
        raise GatekitError(f"{path}: no step_N.pkl files")
    return sorted(files)


def _split(params, source) -> dict:
    """JaxGCRL's (alpha, actor, critic) tuple -> gatekit's {"actor", "sa_encoder", "goal_encoder"}."""
    if not (isinstance(params, (tuple, list)) and len(params) == 3 and isinstance(params[2], Mapping)
            and {"sa_encoder", "g_encoder"} <= set(params[2])):
        raise GatekitError(f"{source}: expected JaxGCRL's (alpha_params, actor_params, critic_params) with "
                           f"critic_params holding 'sa_encoder' and 'g_encoder'")
    tree = {"actor": params[1], "sa_encoder": params[2]["sa_encoder"], "goal_encoder": params[2]["g_encoder"]}
    import jax

    return jax.tree.map(lambda x: np.asarray(x, np.float32), tree)


MIN_PROBE_ROWS = 4
"""Rows a probe needs: effective rank, CKA (debiased: > 3) and InfoNCE compare rows."""


def import_checkpoints(source, out, settings: ImportSettings, *, probe: dict[str, np.ndarray]) -> list[int]:
    """Converts JaxGCRL checkpoints into a ``gatekit-run/1`` run at ``out``; returns the steps.

    ``probe`` (obs, action, goal) is written as the run's ``probe.npz`` and used as every
    checkpoint's sample (future goal = goal)."""
    net = settings.net()
    out = pathlib.Path(out)
    files = checkpoint_files(source)
    for key, dim in (("obs", "obs_dim"), ("action", "action_dim"), ("goal", "goal_dim")):
        arr = probe[key]
        if arr.ndim != 2 or arr.shape[1] != net[dim]:
            raise GatekitError(f"--probe: {key!r} has shape {arr.shape}; expected [n, {net[dim]}] (--{dim.replace('_', '-')})")
        if arr.dtype.kind not in "fiu":
            raise GatekitError(f"--probe: {key!r} is {arr.dtype} ({'complex' if arr.dtype.kind == 'c' else 'not real'} "
                               f"numbers); gatekit scores real-valued rows")
        if arr.shape[0] < MIN_PROBE_ROWS:
            raise GatekitError(f"--probe: {key!r} has {arr.shape[0]} row(s); the statistics need at least "
                               f"{MIN_PROBE_ROWS} (ranks, CKA and InfoNCE compare rows with each other)")
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        if bad:
            raise GatekitError(f"--probe: {key!r} has {bad} non-finite value(s) (NaN or Inf)")
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise GatekitError(f"{out}: exists and is not a folder; import into a new folder")
    if out.exists() and any(out.iterdir()):
        raise GatekitError(f"{out}: exists and is not empty; import into a new folder")
    made = not out.exists()
    fam = JaxGCRLNetworks(net)
    sample = {"obs": probe["obs"], "action": probe["action"], "goal": probe["goal"], "future_goal": probe["goal"]}
    config = {"family": "jaxgcrl", "net": net, "role": "teacher", "env": {"name": "jaxgcrl-import"},
              "producer": "gatekit import jaxgcrl", "source": str(pathlib.Path(source).resolve())}
    steps = []
    try:
        steps = _write(out, config, files, fam, sample, probe)
    except BaseException:  # nothing half-imported is left behind (run.json, probe.npz, a lock file)
        import shutil

        if made:
            shutil.rmtree(out, ignore_errors=True)
        else:  # the user's empty folder stays; only what the import wrote into it goes
            for child in out.iterdir():
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() and not child.is_symlink() \
                    else child.unlink(missing_ok=True)
        raise
    return steps


def _write(out, config, files, fam, sample, probe) -> list[int]:
    from gatekit import io

    for _, f in files:  # every pickle is read (allow-listed) before any writer starts: a refused one
        _split(io.read_restricted_pickle(f), f)  # leaves no Orbax thread behind to trip over a removed folder
    steps = []
    with io.RunWriter(out, config=config, async_save=False) as w:
        io.write_probe(out, obs=probe["obs"], action=probe["action"], goal=probe["goal"])
        for epoch, (step, f) in enumerate(files, start=1):
            params = _split(io.read_restricted_pickle(f), f)
            try:
                fam.apply(params, *(np.asarray(sample[k][:2], np.float32) for k in ("obs", "action", "goal")))
            except Exception as e:  # noqa: BLE001 - shapes that do not match the flags
                raise GatekitError(f"{f}: parameters do not match the given flags ({type(e).__name__}: "
                                   f"{' '.join(str(e).split())[:300]})") from None
            w.save(step, params=params, meta={"epoch": epoch, "env_steps": step, "source": f.name}, sample=sample)
            steps.append(step)
    return steps


ASSUMED = {"skip_connections": 4, "use_relu": False, "energy_fn": "norm"}
"""Settings no parameter shape reveals, with JaxGCRL's CRL defaults (say otherwise with the flags)."""


def _denses(tree) -> tuple[list[tuple[int, int]], bool]:
    p = tree.get("params", tree) if isinstance(tree, Mapping) else {}
    names = sorted((k for k in p if re.fullmatch(r"Dense_\d+", str(k))), key=lambda k: int(k.split("_")[1]))
    shapes = []
    for k in names:
        kernel = p[k].get("kernel") if isinstance(p[k], Mapping) else None
        if kernel is None or np.ndim(kernel) != 2:
            return [], False
        shapes.append(tuple(int(x) for x in np.shape(kernel)))
    return shapes, any(str(k).startswith("LayerNorm") for k in p)


def infer_settings(source, **given) -> tuple[ImportSettings, dict, dict]:
    """The import settings of JaxGCRL checkpoints at ``source``, read off the first pickle's
    parameter shapes (obs, goal and action sizes, width, depth, representation size, LayerNorm);
    ``given`` settings (not None) must agree with them. Returns (settings, inferred, assumed):
    what was read off the shapes, and what no shape reveals (:data:`ASSUMED`, unless given)."""
    from gatekit import io

    files = checkpoint_files(source)
    tree = _split(io.read_restricted_pickle(files[0][1]), files[0][1])
    sa, ln = _denses(tree["sa_encoder"])
    g, _ = _denses(tree["goal_encoder"])
    act, _ = _denses(tree["actor"])
    if len(sa) < 2 or len(g) != len(sa) or len(act) != len(sa) + 1:
        raise GatekitError(f"{files[0][1]}: its parameters are not JaxGCRL's CRL networks (encoders with "
                           f"{len(sa)} and {len(g)} Dense layers, actor with {len(act)})")
    action_dim = act[-1][1]
    inferred = {"obs_dim": sa[0][0] - action_dim, "goal_dim": g[0][0], "action_dim": action_dim, "h_dim": sa[0][1],
                "n_hidden": len(sa) - 1, "repr_dim": sa[-1][1], "use_ln": ln}
    if act[0][0] != inferred["obs_dim"] + inferred["goal_dim"] or inferred["obs_dim"] < 1:
        raise GatekitError(f"{files[0][1]}: the actor reads {act[0][0]} inputs, the encoders imply obs "
                           f"{inferred['obs_dim']} + goal {inferred['goal_dim']}: not JaxGCRL's CRL layout")
    for k, v in given.items():
        if v is not None and k in inferred and v != inferred[k]:
            raise GatekitError(f"--{k.replace('_', '-')} {v}: the checkpoint's parameters say {inferred[k]} "
                               f"({files[0][1]})")
    assumed = {k: v for k, v in ASSUMED.items() if given.get(k) is None}
    chosen = {**inferred, **ASSUMED, **{k: v for k, v in given.items() if v is not None and k in ASSUMED}}
    return ImportSettings(**chosen), inferred, assumed


PROBE_ROWS = 256


def default_probe(settings: ImportSettings, rows: int = PROBE_ROWS, seed: int = 0) -> dict[str, np.ndarray]:
    """A probe when none is given: ``rows`` rows of obs and goal from N(0, 1) and actions from
    U(-1, 1) (seed ``seed``): every checkpoint is scored on the same rows, so the statistics compare
    checkpoints, but states from the task itself (``--probe``) are what they should describe."""
    rng = np.random.default_rng(seed)
    return {"obs": rng.normal(size=(rows, settings.obs_dim)).astype(np.float32),
            "action": rng.uniform(-1, 1, (rows, settings.action_dim)).astype(np.float32),
            "goal": rng.normal(size=(rows, settings.goal_dim)).astype(np.float32)}

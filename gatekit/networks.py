"""Network families: one source of truth for the trainer (``training/``) and for scoring.

A *family* turns ``run.json["net"]`` into an object with
``init(key) -> params`` and ``apply(params, obs, action, goal) -> Outputs``.
The built-in family ``crl`` is contrastive RL (Eysenbach et al. 2022) with the deep residual
encoders of Wang et al. 2025: every residual block is ``block_size`` x (Dense -> LayerNorm ->
Swish) with the skip added after the last activation; ``depth`` counts the Dense layers in
blocks. Users add families with :func:`register_family`.

References:
  Eysenbach, Zhang, Salakhutdinov, Levine. Contrastive Learning as Goal-Conditioned RL. NeurIPS 2022.
  Wang et al. 1000 Layer Networks for Self-Supervised RL (depth-induced emergence). NeurIPS 2025.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from typing import Any, Callable, Mapping, Protocol

import flax.linen as nn
import jax
import jax.numpy as jnp

from gatekit.errors import GatekitError
from gatekit.nettypes import ENERGIES, JAXGCRL_NET_KEYS, Outputs  # noqa: F401 - re-exported

LOG_STD_MIN = -5.0
LOG_STD_MAX = 2.0
ACTIVATIONS = {"swish": nn.swish, "relu": nn.relu, "gelu": nn.gelu, "tanh": nn.tanh}


class Family(Protocol):
    """A rebuilt network family: ``init`` and ``apply`` plus the energy it uses."""

    energy: str

    def init(self, key: jax.Array) -> dict: ...

    def apply(self, params: dict, obs, action, goal) -> Outputs: ...


# --------------------------------------------------------------------------------------------
# Energies (critic values). JAX, direct difference form (accurate in float32).
# --------------------------------------------------------------------------------------------


def energy(x: jax.Array, y: jax.Array, kind: str = "neg_l2_sq") -> jax.Array:
    """Row-wise critic f(x_i, y_i). x, y: [..., d] -> [...]."""
    if kind == "neg_l2_sq":
        return -jnp.sum((x - y) ** 2, axis=-1)
    if kind == "neg_l2":
        return -jnp.sqrt(jnp.sum((x - y) ** 2, axis=-1) + 1e-6)
    if kind == "dot":
        return jnp.sum(x * y, axis=-1)
    raise GatekitError(f"unknown energy {kind!r}; expected one of {ENERGIES}")


def pairwise_energy(x: jax.Array, y: jax.Array, kind: str = "neg_l2_sq") -> jax.Array:
    """All-pairs critic matrix: out[i, j] = f(x_i, y_j). x: [B, d], y: [M, d] -> [B, M].

    Distances by ``|x|^2 + |y|^2 - 2 x.y`` (one matmul), not by broadcasting ``x_i - y_j`` into a
    [B, M, d] tensor: the same values to float32 rounding (~1e-5 on the logits at B = 256,
    d = 32), and 9x faster forward + backward there, which was most of a CRL update on a CPU
    (benchmarks/update_profile.py)."""
    if kind == "dot":
        return x @ y.T
    if kind not in ("neg_l2_sq", "neg_l2"):
        raise GatekitError(f"unknown energy {kind!r}; expected one of {ENERGIES}")
    sq = jnp.sum(x * x, axis=-1)[:, None] + jnp.sum(y * y, axis=-1)[None, :] - 2.0 * (x @ y.T)
    sq = jnp.maximum(sq, 0.0)  # rounding can take a tiny distance below zero
    return -sq if kind == "neg_l2_sq" else -jnp.sqrt(sq + 1e-6)


# --------------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------------


def _kernel_init():
    # JaxGCRL / Wang et al.: variance_scaling(1/3, fan_in, uniform), zero bias.
    return nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")


class ResidualMLP(nn.Module):
    """Dense+LN+act stem, ``depth // block_size`` residual blocks, linear head."""

    depth: int
    width: int
    out_dim: int
    block_size: int = 4
    activation: str = "swish"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        dense = lambda n: nn.Dense(n, kernel_init=_kernel_init(), bias_init=nn.initializers.zeros)
        x = act(nn.LayerNorm()(dense(self.width)(x)))
        for _ in range(self.depth // self.block_size):
            skip = x
            for _ in range(self.block_size):
                x = act(nn.LayerNorm()(dense(self.width)(x)))
            x = x + skip
        return dense(self.out_dim)(x)


def squash_log_std(raw: jax.Array) -> jax.Array:
    """Maps an unbounded actor output into [LOG_STD_MIN, LOG_STD_MAX] with tanh."""
    return LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (jnp.tanh(raw) + 1.0)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Architecture:
    """The CRL network's sizes, declared once: :class:`CRLNetConfig` (``run.json["net"]``) and the
    trainer's ``TrainConfig`` both inherit these fields and their defaults."""

    depth: int = 4
    """Dense layers in residual blocks (a multiple of block_size)."""
    width: int = 128
    """Hidden width."""
    rep_dim: int = 32
    """Representation size of phi(s, a) and psi(g)."""
    energy: str = "neg_l2_sq"
    """Critic energy: one of ENERGIES."""
    activation: str = "swish"
    block_size: int = 4
    """Dense layers per residual block."""

    def architecture(self) -> dict[str, Any]:
        """Just these fields, as keyword arguments."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(Architecture)}

    def check_architecture(self, error: type[Exception] = GatekitError, prefix: str = "net.") -> None:
        """Raises ``error`` naming the field for impossible sizes."""
        for name in ("depth", "width", "rep_dim", "block_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise error(f"{prefix}{name} must be a positive integer, got {v!r}")
        if self.depth % self.block_size:
            raise error(f"{prefix}depth={self.depth} must be a multiple of {prefix}block_size={self.block_size}")
        if self.energy not in ENERGIES:
            raise error(f"{prefix}energy={self.energy!r}; expected one of {ENERGIES}")
        if self.activation not in ACTIVATIONS:
            raise error(f"{prefix}activation={self.activation!r}; expected one of {tuple(ACTIVATIONS)}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class CRLNetConfig(Architecture):
    """Everything needed to rebuild a ``crl`` network (``run.json["net"]``): the env's sizes and
    the :class:`Architecture`."""

    obs_dim: int
    goal_dim: int
    action_dim: int
    goal_indices: tuple[int, ...]

    def __post_init__(self):
        object.__setattr__(self, "goal_indices", tuple(int(i) for i in self.goal_indices))
        for name in ("obs_dim", "goal_dim", "action_dim"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise GatekitError(f"net.{name} must be a positive integer, got {v!r}")
        self.check_architecture()
        if len(self.goal_indices) != self.goal_dim:
            raise GatekitError(
                f"net.goal_indices has {len(self.goal_indices)} entries but net.goal_dim={self.goal_dim}"
            )
        if any(not 0 <= i < self.obs_dim for i in self.goal_indices):
            raise GatekitError(f"net.goal_indices {self.goal_indices} out of range for obs_dim={self.obs_dim}")

    @classmethod
    def from_dict(cls, net: Mapping[str, Any]) -> "CRLNetConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(net) - fields)
        if unknown:
            raise GatekitError(f"net: unknown key(s) {unknown} for family 'crl'")
        try:
            return cls(**dict(net))
        except TypeError as e:
            raise GatekitError(f"net: {e}") from None

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["goal_indices"] = list(self.goal_indices)
        return d


class CRLNetworks:
    """The ``crl`` family: SA encoder phi(s, a), goal encoder psi(g), tanh-Gaussian actor."""

    def __init__(self, cfg: CRLNetConfig):
        self.cfg = cfg
        self.energy = cfg.energy
        mlp = lambda out: ResidualMLP(cfg.depth, cfg.width, out, cfg.block_size, cfg.activation)
        self.sa_encoder = mlp(cfg.rep_dim)
        self.goal_encoder = mlp(cfg.rep_dim)
        self.actor = mlp(2 * cfg.action_dim)

    def init(self, key: jax.Array) -> dict:
        k_sa, k_g, k_pi = jax.random.split(key, 3)
        c = self.cfg
        obs, act, goal = jnp.zeros((1, c.obs_dim)), jnp.zeros((1, c.action_dim)), jnp.zeros((1, c.goal_dim))
        return {
            "sa_encoder": self.sa_encoder.init(k_sa, jnp.concatenate([obs, act], -1)),
            "goal_encoder": self.goal_encoder.init(k_g, goal),
            "actor": self.actor.init(k_pi, jnp.concatenate([obs, goal], -1)),
        }

    def policy(self, actor_params, obs: jax.Array, goal: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Gaussian parameters before the tanh: (mu, log_std), each [N, action_dim]."""
        out = self.actor.apply(actor_params, jnp.concatenate([obs, goal], -1))
        mu, raw = jnp.split(out, 2, axis=-1)
        return mu, squash_log_std(raw)

    def sa_repr(self, sa_params, obs: jax.Array, action: jax.Array) -> jax.Array:
        return self.sa_encoder.apply(sa_params, jnp.concatenate([obs, action], -1))

    def goal_repr(self, goal_params, goal: jax.Array) -> jax.Array:
        return self.goal_encoder.apply(goal_params, goal)

    def apply(self, params: dict, obs, action, goal) -> Outputs:
        mu, log_std = self.policy(params["actor"], obs, goal)
        return Outputs(
            mu=mu,
            log_std=log_std,
            sa_repr=self.sa_repr(params["sa_encoder"], obs, action),
            goal_repr=self.goal_repr(params["goal_encoder"], goal),
        )


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------

FamilyFactory = Callable[[Mapping[str, Any]], Family]
ENTRY_POINT_GROUP = "gatekit.families"


@dataclasses.dataclass(frozen=True)
class FamilySpec:
    """A registered family: its factory, the ``net`` keys it needs, the top-level params keys
    its checkpoints must hold, and whether its runs need a fixed ``probe.npz``."""

    factory: FamilyFactory
    required_net_keys: tuple[str, ...] = ()
    param_keys: tuple[str, ...] = ()
    needs_probe: bool = False


_FAMILIES: dict[str, FamilySpec] = {}
_BUILT: dict[tuple[str, str], Family] = {}
_BUILT_LOCK = threading.Lock()


def register_family(name: str, factory: FamilyFactory, *, required_net_keys: tuple[str, ...] = (),
                    param_keys: tuple[str, ...] = (), needs_probe: bool = False, overwrite: bool = False) -> None:
    """Registers ``factory(net_dict) -> Family`` under ``name`` (the run.json ``family``).

    ``required_net_keys`` are checked when a run is opened; ``param_keys`` (top-level keys of
    the params tree) when a checkpoint is scored: a missing one is an error naming the run and
    the key. Installed packages can also provide families through the ``gatekit.families``
    entry-point group (the object loaded is a factory, or a :class:`FamilySpec`); a factory may
    carry ``required_net_keys`` / ``param_keys`` / ``needs_probe`` attributes.
    """
    if name in _FAMILIES and not overwrite:
        raise GatekitError(f"network family {name!r} is already registered")
    _FAMILIES[name] = FamilySpec(factory, tuple(required_net_keys), tuple(param_keys), needs_probe)
    for key in [k for k in _BUILT if k[0] == name]:
        del _BUILT[key]


def _from_entry_points(name: str) -> bool:
    """Loads family ``name`` from the ``gatekit.families`` entry points, if a package has it."""
    from importlib import metadata

    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name != name:
            continue
        try:
            obj = ep.load()
        except Exception as e:  # noqa: BLE001 - a broken plugin is the user's error, said plainly
            raise GatekitError(f"network family {name!r}: entry point {ep.value!r} failed to load "
                               f"({type(e).__name__}: {e})") from None
        if isinstance(obj, FamilySpec):
            _FAMILIES[name] = obj
        elif callable(obj):
            _FAMILIES[name] = FamilySpec(obj, tuple(getattr(obj, "required_net_keys", ())),
                                         tuple(getattr(obj, "param_keys", ())), bool(getattr(obj, "needs_probe", False)))
        else:
            raise GatekitError(f"network family {name!r}: entry point {ep.value!r} is not a factory")
        return True
    return False


def families() -> tuple[str, ...]:
    from importlib import metadata

    return tuple(sorted(set(_FAMILIES) | {ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}))


def spec(family: str) -> FamilySpec:
    if family not in _FAMILIES and not _from_entry_points(family):
        raise GatekitError(f"unknown network family {family!r}; known: {families()} (a package can add one "
                           f"through the {ENTRY_POINT_GROUP!r} entry-point group)")
    return _FAMILIES[family]


def build(family: str, net: Mapping[str, Any]) -> Family:
    """Rebuilds a family from ``run.json["net"]``; cached, so equal configs share one object
    (and hence one jitted forward pass). Missing required ``net`` keys are a GatekitError."""
    fs = spec(family)
    missing = [k for k in fs.required_net_keys if k not in net]
    if missing:
        raise GatekitError(f"run.json net lacks required key(s) {missing} for family {family!r}")
    key = (family, json.dumps(dict(net), sort_keys=True, default=list))
    with _BUILT_LOCK:  # threads of one process (training.many) share one object
        if key not in _BUILT:
            _BUILT[key] = fs.factory(net)
        return _BUILT[key]


def check_params(family: str, params) -> None:
    """The checkpoint's params tree has the top-level keys the family needs."""
    keys = spec(family).param_keys
    if not keys:
        return
    if not isinstance(params, Mapping):
        raise GatekitError(f"params is a {type(params).__name__}, family {family!r} needs a dict with {list(keys)}")
    missing = [k for k in keys if k not in params]
    if missing:
        raise GatekitError(f"params lack key(s) {missing} required by family {family!r} (have {sorted(params)})")


class ArraysFamily:
    """The ``arrays`` family: outputs-only runs for any framework (PyTorch, TF, NumPy).

    A checkpoint's params hold the networks' *outputs* instead of their weights: ``mu`` and
    ``log_std`` [n_sample, action_dim] on the checkpoint's sample rows, ``phi`` (phi(s, a)) and
    ``psi`` (psi(g)) [n_probe, rep_dim] on the run's ``probe.npz`` rows. ``net`` = {"energy": ...}.
    """

    def __init__(self, net: Mapping[str, Any]):
        self.energy = net.get("energy", "neg_l2_sq")
        if self.energy not in ENERGIES:
            raise GatekitError(f"net.energy {self.energy!r}: expected one of {ENERGIES}")

    def init(self, key):
        raise GatekitError("the 'arrays' family stores outputs; it has no parameters to initialize")

    def apply(self, params, obs, action, goal) -> Outputs:
        return Outputs(mu=params["mu"], log_std=params["log_std"], sa_repr=params["phi"], goal_repr=params["psi"])


register_family("crl", lambda net: CRLNetworks(CRLNetConfig.from_dict(net)),
                required_net_keys=("obs_dim", "goal_dim", "action_dim", "goal_indices", "depth", "width", "rep_dim"),
                param_keys=("actor", "sa_encoder", "goal_encoder"))
def _jaxgcrl(net):
    from gatekit.jaxgcrl import JaxGCRLNetworks

    return JaxGCRLNetworks(net)


register_family("jaxgcrl", _jaxgcrl, param_keys=("actor", "sa_encoder", "goal_encoder"),
                required_net_keys=JAXGCRL_NET_KEYS)
register_family("arrays", ArraysFamily, param_keys=("mu", "log_std", "phi", "psi"), needs_probe=True)

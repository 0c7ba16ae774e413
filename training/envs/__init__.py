"""Goal-conditioned environments with one functional interface (see :mod:`training.envs.base`).

``pointmaze`` is pure JAX and the CPU default; ``reacher``, ``ant`` and ``ant_maze`` wrap Brax
(imported only when asked for) for paper-scale runs on an accelerator.
"""

from __future__ import annotations

from typing import Any, Callable

from training.envs.base import EnvState, GoalEnv

_REGISTRY: dict[str, Callable[..., GoalEnv]] = {}


def register(name: str, factory: Callable[..., GoalEnv]) -> None:
    _REGISTRY[name] = factory


def names() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def make(name: str, **kwargs: Any) -> GoalEnv:
    """Builds an environment by name; ValueError names the valid choices."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown env {name!r}; choose from {names()}")
    return _REGISTRY[name](**kwargs)


def _pointmaze(**kw):
    from training.envs.pointmaze import PointMaze

    return PointMaze(**kw)


def _brax(kind):
    def factory(**kw):
        try:
            import brax  # noqa: F401
        except ImportError:
            raise ValueError(f"env {kind!r} needs Brax, which this install does not have: "
                             f"pip install 'gatekit[brax]' (or pip install \".[brax]\" in a clone)") from None
        from training.envs import brax_envs

        return {"reacher": brax_envs.GoalReacher, "ant": brax_envs.GoalAnt, "ant_maze": brax_envs.AntMaze}[kind](**kw)

    return factory


def _dyn(cls_name):
    def factory(**kw):
        from training.envs import dynmaze

        return getattr(dynmaze, cls_name)(**kw)

    return factory


register("pointmaze", _pointmaze)
for _name, _cls in (("momentum_maze", "MomentumMaze"), ("car_maze", "CarMaze"), ("warped_maze", "WarpedMaze"),
                    ("arm_reach", "ArmReach")):
    register(_name, _dyn(_cls))
for _k in ("reacher", "ant", "ant_maze"):
    register(_k, _brax(_k))

__all__ = ["EnvState", "GoalEnv", "make", "names", "register"]

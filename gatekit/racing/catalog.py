"""Every racing strategy by its command-line name: one line each (adding a strategy is one file
in this folder and one line here)."""

from __future__ import annotations

from gatekit.errors import GatekitError
from gatekit.racing.by_need import ByNeed
from gatekit.racing.gp import GPRace
from gatekit.racing.halving import Halving
from gatekit.racing.last_k import LastK
from gatekit.racing.pilot import Pilot
from gatekit.racing.second_seed import SecondSeed

STRATEGIES = {
    LastK.name: LastK,
    Halving.name: Halving,
    SecondSeed.name: SecondSeed,
    Pilot.name: Pilot,
    GPRace.name: GPRace,
    ByNeed.name: ByNeed,
}


def make_strategy(name: str, **settings):
    """The strategy called ``name`` with those of ``settings`` it takes (None: its default)."""
    import dataclasses

    if name not in STRATEGIES:
        from difflib import get_close_matches

        near = get_close_matches(str(name), list(STRATEGIES), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise GatekitError(f"--strategy {name!r}: unknown{hint}; choose from {sorted(STRATEGIES)}")
    cls = STRATEGIES[name]
    fields = {f.name for f in dataclasses.fields(cls)}
    for key, option in OPTIONS.items():
        if settings.get(key) is not None and key not in fields:
            takes = sorted(n for n, c in STRATEGIES.items() if key in {f.name for f in dataclasses.fields(c)})
            raise GatekitError(f"{option} does not apply to --strategy {name} (it is for {', '.join(takes)})")
    return cls(**{k: v for k, v in settings.items() if k in fields and v is not None})


OPTIONS = {"k": "--last", "seeds": "--seeds", "rungs": "--rungs", "n": "--students"}
"""A strategy's settings by the command-line option that sets them: an option given to a
strategy that does not take it is an error, never silently dropped."""

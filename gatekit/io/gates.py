"""Gate files (``gatekit-gate/1``) and the built-in presets."""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
from typing import Any, Mapping

from gatekit import rule as R
from gatekit.errors import GatekitError
from gatekit.io.files import PathLike, _atomic_write_text, to_jsonable

GATE_FORMAT = "gatekit-gate/1"
PRESET_DIR = pathlib.Path(__file__).resolve().parent.parent / "presets"


@dataclasses.dataclass(frozen=True)
class Gate:
    """A gate rule as a saved, versioned artifact (``gatekit-gate/1``).

    ``metric direction threshold`` (e.g. ``cka_sa_prev above 0.95``) must hold for ``patience``
    consecutive checkpoints (checked by :class:`gatekit.rule.Rule`). The rest records where the
    rule comes from: the label rule, the table it was fitted on (file, sha256, n, groups), its
    out-of-fold validation against the training-step baseline, and the env it was fitted on.
    """

    metric: str
    direction: str
    threshold: float
    patience: int = 1
    name: str | None = None
    description: str = ""
    env: str | None = None
    label_rule: dict | None = None
    fitted_on: dict | None = None
    """Where the rule was fitted: file, sha256, n, groups, and ``range`` ([min, max] of the
    values it was fitted on; ``select`` warns about runs outside it)."""
    validation: dict | None = None
    transform: str = "raw"
    """The form of the metric the rule reads (:mod:`gatekit.transforms`): ``raw``, or a
    scale-free one computed over the run's checkpoints so far (``ratio_first``, ...)."""
    format: str = GATE_FORMAT

    def __post_init__(self):
        from gatekit.transforms import ALL_FORMS

        try:
            checked = R.Rule(self.metric, self.direction, self.threshold, self.patience)
        except GatekitError as e:
            raise GatekitError(f"gate: {e}") from None
        object.__setattr__(self, "threshold", checked.threshold)
        if self.transform not in ALL_FORMS:
            raise GatekitError(f"gate: transform must be one of {ALL_FORMS}, got {self.transform!r}")

    def to_rule(self) -> R.Rule:
        return R.Rule(self.metric, self.direction, self.threshold, self.patience)

    @property
    def reads(self) -> str:
        """The value the rule reads: the metric, or its form, e.g. ``of_running_max(entropy)``."""
        return self.metric if self.transform == "raw" else f"{self.transform}({self.metric})"

    @property
    def rule(self) -> str:
        """The rule as text, e.g. ``goal_rank > 5.84 for 2 consecutive checkpoints``."""
        if self.is_final:
            return "the final checkpoint"
        return self.reads + self.to_rule().text[len(self.metric):]

    @property
    def is_final(self) -> bool:
        """The final-checkpoint rule (``of_final(step)`` above a threshold just under 1)."""
        return self.transform == "of_final" and self.metric == "step" and self.direction == "above" \
            and 0.99 <= self.threshold < 1

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {"format": d.pop("format"), **d}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "gate") -> "Gate":
        if not isinstance(d, Mapping):
            raise GatekitError(f"{source}: expected a JSON object, found {type(d).__name__}")
        if d.get("format") != GATE_FORMAT:
            raise GatekitError(f"{source}: format is {d.get('format')!r}; this gatekit reads {GATE_FORMAT!r}")
        fields = {f.name for f in dataclasses.fields(cls)}
        missing = [k for k in ("metric", "direction", "threshold") if k not in d]
        if missing:
            raise GatekitError(f"{source}: missing key(s) {', '.join(missing)}")
        unknown = sorted(set(d) - fields)
        if unknown:
            raise GatekitError(f"{source}: unknown key(s) {unknown}")
        for key, types in _FIELD_TYPES.items():
            if key in d and not (d[key] is None and None in types) and \
                    (isinstance(d[key], bool) or not isinstance(d[key], tuple(x for x in types if x is not None))):
                wanted = " or ".join("null" if x is None else x.__name__ for x in types)
                raise GatekitError(f"{source}: {key!r} must be {wanted}, got {type(d[key]).__name__} {d[key]!r:.60}")
        try:
            for name in ("validation", "fitted_on", "label_rule"):
                if d.get(name) is not None:
                    try:
                        check_record(d[name], name)
                    except RecursionError:
                        raise GatekitError(f"gate: {name} is nested too deeply") from None
            return cls(**dict(d))
        except GatekitError as e:
            raise GatekitError(f"{source}: {e}") from None

    @classmethod
    def from_fit(cls, fit, *, patience: int = 1, **info) -> "Gate":
        """The rule a :class:`gatekit.fitting.FitResult` found, with its out-of-fold validation
        and baseline attached."""
        validation = {
            "in_sample": {"auc": fit.auc, "auc_ci": list(fit.auc_ci), "accuracy": fit.accuracy,
                          "direction_source": fit.direction_source, "spearman_rho": fit.spearman_rho},
            "out_of_fold": fit.logo,
            "baseline": fit.baseline,
            "beats_baseline": fit.beats_baseline(),
            "verdict": fit.verdict,
            "warnings": list(fit.warnings),
        }
        fitted_on = dict(info.pop("fitted_on", None) or {})
        if fit.value_range is not None:
            fitted_on.setdefault("range", list(fit.value_range))
        return cls(metric=fit.metric, direction=fit.direction, threshold=fit.threshold, patience=patience,
                   label_rule=fit.label_rule, validation=validation, fitted_on=fitted_on or None, **info)


RATES = frozenset({"choose", "stop", "success", "final_checkpoint_choose", "share", "saved"})
"""Record keys that are shares of runs (in [0, 1]) wherever they appear in a gate's record."""
NUMBERS = RATES | {"regret", "gain", "threshold"}
MAX_RECORD_NUMBER = 1e6
"""The largest number a gate's record may hold where it is a share, a regret or a threshold."""


def check_record(value, where: str, keys: bool | None = None) -> None:
    """A gate's record (``validation``, ``fitted_on``, ``label_rule``) holds what gatekit prints
    and decides with: finite numbers (no NaN or Infinity anywhere), rates in [0, 1], intervals
    (``*_ci``) as two numbers or nulls, and ``default_for`` as true/false. GatekitError naming the
    key path otherwise (a record is read before it is believed: a NaN rate once printed "right
    on nan%" and "trusted: yes"). The key checks apply inside ``validation``; elsewhere only finiteness."""
    keys = where.startswith("validation") if keys is None else keys
    if isinstance(value, float) and not math.isfinite(value):
        raise GatekitError(f"gate: {where} is {value!r}; a record holds finite numbers")
    if isinstance(value, dict):
        for k, v in value.items():
            path = f"{where}.{k}"
            if keys and k in NUMBERS and v is not None and not isinstance(v, (dict, list)):  # a dict there is a table
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise GatekitError(f"gate: {path} must be a number, got {type(v).__name__} {v!r:.40}")
                if not math.isfinite(v):
                    raise GatekitError(f"gate: {path} is {v!r}; a record holds finite numbers")
                if k in RATES and not 0 <= v <= 1:
                    raise GatekitError(f"gate: {path} is {v!r}; a share of runs is in [0, 1]")
                if abs(v) > MAX_RECORD_NUMBER:
                    raise GatekitError(f"gate: {path} is {v!r}; a record's numbers are shares and thresholds, "
                                       f"at most {MAX_RECORD_NUMBER:g} in size")
            if keys and isinstance(k, str) and k.endswith("_ci") and v is not None:
                if not (isinstance(v, list) and len(v) == 2 and all(
                        x is None or (isinstance(x, (int, float)) and not isinstance(x, bool)) for x in v)):
                    raise GatekitError(f"gate: {path} must be [low, high] numbers, got {v!r:.60}")
                rate = k[:-3] in RATES
                for x in v:
                    if x is not None and (not math.isfinite(x) or (rate and not 0 <= x <= 1)
                                          or abs(x) > MAX_RECORD_NUMBER):
                        raise GatekitError(f"gate: {path} holds {x!r}; an interval of "
                                           f"{'a share of runs is in [0, 1]' if rate else 'finite numbers'}")
            if keys and k == "default_for" and v is not None:
                if not isinstance(v, dict) or not all(isinstance(x, bool) for x in v.values()):
                    raise GatekitError(f"gate: {path} must map decisions to true/false, got {v!r:.60}")
                continue
            check_record(v, path, keys)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_record(v, f"{where}[{i}]", keys)


_FIELD_TYPES = {  # exact JSON types of a gate file's fields (a bool is never a number here)
    "metric": (str,), "direction": (str,), "threshold": (int, float), "patience": (int,), "name": (str, None),
    "description": (str,), "env": (str, None), "label_rule": (dict, None), "fitted_on": (dict, None),
    "validation": (dict, None), "transform": (str,), "format": (str,),
}
MAX_GATE_BYTES = 10 * 2**20
"""A gate file is a few KB; anything over this is refused before it is parsed."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    keys = [k for k, _ in pairs]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise ValueError(f"duplicate key(s) {dupes}")
    return dict(pairs)


def preset_names() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in PRESET_DIR.glob("*.json")))


def is_preset_name(spec) -> bool:
    """Whether ``spec`` names a shipped preset: a bare name (no folder, no extension) in
    :func:`preset_names`. A gate file is spelled as a path (``./auto``, ``gates/auto.json``)."""
    return isinstance(spec, str) and spec in preset_names() and "/" not in spec and "\\" not in spec


def read_gate(spec: PathLike):
    """A :class:`Gate` from a ``gatekit-gate/1`` JSON file or a preset name
    (``paper``, ``pointmaze``). Raises GatekitError naming the file for anything malformed."""
    path = pathlib.Path(spec)
    if is_preset_name(spec):  # a preset name means the preset, whatever sits in the working folder
        if path.exists():
            import warnings

            from gatekit.errors import GatekitNote

            warnings.warn(f"{spec!r} is the shipped preset; the {'folder' if path.is_dir() else 'file'} "
                          f"./{spec} is not read (write ./{spec} or a path with a / to use a file)", GatekitNote,
                          stacklevel=2)
        path = PRESET_DIR / f"{spec}.json"
    if not path.is_file():
        raise GatekitError(
            f"{spec}: no such gate file or preset (presets: {', '.join(preset_names())}; "
            f"make one with `gatekit fit ... --save gate.json`)"
        )
    try:
        if path.stat().st_size > MAX_GATE_BYTES:
            raise GatekitError(f"{path}: {path.stat().st_size} bytes; a gate file is at most {MAX_GATE_BYTES}")
        doc = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_no_duplicates)
    except OSError as e:
        raise GatekitError(f"{path}: cannot read ({e.strerror or e})") from None
    except (UnicodeDecodeError, ValueError) as e:  # JSONDecodeError and duplicate keys are ValueErrors
        raise GatekitError(f"{path}: not a gate file (not valid JSON: {e})") from None
    except RecursionError:
        raise GatekitError(f"{path}: not a gate file (JSON nested too deeply)") from None
    return Gate.from_dict(doc, source=str(path))


def write_gate(gate, path: PathLike) -> pathlib.Path:
    """Writes a Gate as indented JSON (atomically)."""
    path = pathlib.Path(path)
    if path.is_dir():
        raise GatekitError(f"{path}: is a directory; give a file name for the gate (e.g. gate.json)")
    _atomic_write_text(path, json.dumps(to_jsonable(gate.to_dict()), indent=1) + "\n")
    return path

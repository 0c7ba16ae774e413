"""Measuring which checkpoint to distill from: racing strategies, trainers and one engine.

A strategy (one class per file: :class:`LastK`, :class:`Halving`, :class:`SecondSeed`,
:class:`Pilot`, :class:`GPRace`; :data:`STRATEGIES` by name) asks for students and picks; a trainer trains them
(:class:`CallableTrainer`, :class:`CommandTrainer`, :class:`ReplayTrainer`, the built-in one via
:func:`builtin_trainer`); :func:`race` runs them through any ``concurrent.futures.Executor``
(:func:`make_executor`: threads, processes, SLURM via submitit, Dask). Pure Python and NumPy:
nothing here imports JAX or ``training``.
"""

from gatekit.racing.base import Measurement, Strategy
from gatekit.racing.catalog import STRATEGIES, make_strategy
from gatekit.racing.engine import drive, race, read_results, replay
from gatekit.racing.executors import EXECUTORS, make_executor, parse_options
from gatekit.racing.by_need import ByNeed
from gatekit.racing.gp import GPRace
from gatekit.racing.halving import Halving
from gatekit.racing.last_k import LastK
from gatekit.racing.pilot import Pilot
from gatekit.racing.second_seed import SecondSeed
from gatekit.racing.trainers import CallableTrainer, CommandTrainer, ReplayTrainer, builtin_trainer
from gatekit.racing.verdict import how_sure

__all__ = ["EXECUTORS", "STRATEGIES", "ByNeed", "CallableTrainer", "CommandTrainer", "GPRace", "Halving", "LastK", "Measurement", "Pilot",
           "ReplayTrainer", "SecondSeed", "Strategy", "builtin_trainer", "drive", "how_sure", "make_executor",
           "make_strategy", "parse_options", "race", "read_results", "replay"]

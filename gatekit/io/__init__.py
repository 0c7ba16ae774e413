"""All of gatekit's file IO, one module per on-disk format:

* :mod:`gatekit.io.runs`: the ``gatekit-run/1`` run format (read runs, list and restore
  checkpoints, checksums); :mod:`gatekit.io.writer`: writing one (:class:`RunWriter`);
* :mod:`gatekit.io.npz`: probes (``.npz`` without pickle);
* :mod:`gatekit.io.dataset`: the gate benchmark as a dataset (``gatekit-benchmark/1``);
* :mod:`gatekit.io.tables`: score and pairs tables (CSV / JSON);
* :mod:`gatekit.io.gates`: gate files (``gatekit-gate/1``) and presets;
* :mod:`gatekit.io.pickles`: the restricted, allow-listed reader for JaxGCRL pickles (the only
  pickle gatekit reads);
* :mod:`gatekit.io.logs`: ``metrics.jsonl`` and TensorBoard event files;
* :mod:`gatekit.io.cache`: the score cache;
* :mod:`gatekit.io.files`: strict JSON values, atomic writes, digests.

Everything public is re-exported here: ``from gatekit import io as gio; gio.read_run(path)``.
"""

from gatekit.io.dataset import (BENCHMARK_FORMAT, PART_FORMAT, BenchTask, merge_benchmark_parts, read_benchmark,
                                read_benchmark_part, read_benchmark_task, write_benchmark_part, write_benchmark_task)
from gatekit.io.files import PathLike, sha256_file, to_jsonable, write_text
from gatekit.io.gates import GATE_FORMAT, PRESET_DIR, Gate, preset_names, read_gate, write_gate
from gatekit.io.logs import METRICS_JSONL, TensorBoardLog, append_metrics, read_metrics, read_tensorboard
from gatekit.io.npz import load_probe, read_npz, write_probe
from gatekit.io.pickles import PICKLE_ALLOWED, read_restricted_pickle
from gatekit.io.runs import (CHECKPOINT_DIR, FORMAT, ITEMS, PROBE_NPZ, RUN_JSON, Checkpoint, Run, find_runs,
                             list_checkpoints, load_checkpoint, meta_checksum, parse_checkpoint_spec, read_run, run_changed_since,
                             run_checksum, tree_checksum, validate_run_config, write_run_json)
from gatekit.io.tables import read_table, table_text, write_table
from gatekit.io.writer import RunWriter

__all__ = [
    "BENCHMARK_FORMAT", "BenchTask", "CHECKPOINT_DIR", "FORMAT", "read_benchmark", "read_benchmark_task",
    "write_benchmark_task", "PART_FORMAT", "merge_benchmark_parts", "read_benchmark_part", "write_benchmark_part",
    "METRICS_JSONL", "TensorBoardLog", "append_metrics", "read_metrics",
    "read_tensorboard", "GATE_FORMAT", "ITEMS", "PICKLE_ALLOWED", "PRESET_DIR", "PROBE_NPZ", "RUN_JSON",
    "Checkpoint", "Gate", "PathLike", "Run", "RunWriter", "find_runs", "list_checkpoints", "load_checkpoint",
    "load_probe", "meta_checksum", "parse_checkpoint_spec", "preset_names", "read_gate", "read_npz", "read_restricted_pickle", "read_run",
    "read_table", "run_changed_since", "run_checksum", "sha256_file", "table_text", "to_jsonable", "tree_checksum",
    "validate_run_config", "write_gate", "write_probe", "write_run_json", "write_table", "write_text",
]

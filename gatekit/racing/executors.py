"""Where a race's jobs run: any ``concurrent.futures.Executor``, made from a command-line name.

``threads`` and ``processes`` are the standard pools; ``slurm`` is submitit's AutoExecutor (SLURM
job arrays where ``sbatch`` exists, else its local executor, through the same submission path;
``pip install ".[slurm]"``); ``dask`` is a Dask client's executor (a scheduler at ``address=``,
else a LocalCluster; ``pip install ".[dask]"``). gatekit writes no scheduler of its own.
"""

from __future__ import annotations

import contextlib
import os
import pathlib

from gatekit.errors import GatekitError

EXECUTORS = ("threads", "processes", "slurm", "dask")


def parse_options(items, what: str = "--executor-opt") -> dict:
    """``KEY=VALUE`` strings into a dict (values parsed as JSON where they are JSON, else text)."""
    import json

    out = {}
    for item in items or []:
        key, sep, raw = str(item).partition("=")
        if not sep or not key.strip().isidentifier():
            raise GatekitError(f"{what} {item!r}: expected KEY=VALUE")
        try:
            out[key.strip()] = json.loads(raw)
        except (json.JSONDecodeError, RecursionError):
            out[key.strip()] = raw
    return out


@contextlib.contextmanager
def make_executor(name: str, *, workers: int | None = None, folder: pathlib.Path | None = None,
                  options: dict | None = None):
    """The executor called ``name``, shut down on the way out. ``workers``: parallel students
    (default: the CPU count for pools, 2 for a local Dask cluster); ``options``: submitit's
    ``update_parameters`` (``slurm_partition``, ``timeout_min``, ``gpus_per_node``, ``cluster=local``,
    ...) or Dask's ``address``; ``folder``: where submitit keeps its logs."""
    options = dict(options or {})
    if name not in EXECUTORS:
        raise GatekitError(f"--executor {name!r}: choose from {', '.join(EXECUTORS)}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 4096):
        raise GatekitError(f"--workers must be an integer in [1, 4096], got {workers!r}")
    if options and name in ("threads", "processes"):
        raise GatekitError(f"--executor-opt is for slurm or dask, not {name}")
    if name == "threads":
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as ex:
            yield ex
    elif name == "processes":
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn: a forked JAX process can deadlock
        with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1,
                                 mp_context=multiprocessing.get_context("spawn")) as ex:
            yield ex
    elif name == "slurm":
        try:
            import submitit
        except ImportError:
            raise GatekitError('--executor slurm needs submitit: pip install ".[slurm]"') from None
        cluster = options.pop("cluster", None)
        ex = submitit.AutoExecutor(folder=str(folder or "submitit"), cluster=cluster)
        if workers:
            options.setdefault("slurm_array_parallelism", workers)
        try:
            ex.update_parameters(**options)
        except (ValueError, TypeError, NameError) as e:
            raise GatekitError(f"--executor-opt: submitit refused {sorted(options)} ({e})") from None
        yield _Submitit(ex)
    else:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise GatekitError('--executor dask needs Dask: pip install ".[dask]"') from None
        address = options.pop("address", None)
        if options:
            raise GatekitError(f"--executor-opt for dask takes only address=..., got {sorted(options)}")
        if address:
            client = Client(address)
            cluster = None
        else:
            cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
        try:
            yield client.get_executor(pure=False)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


class _Submitit:
    """submitit's executor as a ``concurrent.futures``-style ``submit`` (its jobs have
    ``result()``; no ``shutdown`` is needed: jobs live in the cluster's queue)."""

    def __init__(self, ex):
        self._ex = ex

    def submit(self, fn, *args, **kwargs):
        return self._ex.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, **_):
        return None

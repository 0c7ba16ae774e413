"""What both command lines (``gatekit`` and ``gatekit-train``) share: the app settings, the error
boundary, progress on stderr, output helpers and click's metavars."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import pathlib
import sys
import typing
import warnings
from typing import Callable

import typer

from gatekit.errors import GatekitDeprecation, GatekitError, GatekitNote


QUIET_HELP = ("Print only the answer (a checkpoint as RUN@STEP where the command names one): no progress, notes or "
              "'wrote' lines; errors and warnings still go to stderr.")
Quiet = typing.Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)]
"""``-q`` on every command of both command lines, with one meaning (:data:`QUIET_HELP`)."""


def say(msg: str, quiet: bool = False) -> None:
    """A line on stderr (progress, notes, 'wrote ...'), unless ``quiet``."""
    if not quiet:
        typer.echo(msg, err=True)


def make_app(name: str, help: str, **kwargs) -> typer.Typer:
    """A typer app with gatekit's settings: help when called bare, plain (not rich) help and
    errors, no pretty tracebacks (a GatekitError is a one-line message, see :func:`error_boundary`)."""
    return typer.Typer(name=name, help=help, no_args_is_help=True, pretty_exceptions_enable=False,
                       rich_markup_mode=None, **kwargs)


def version_callback(prog: str) -> Callable[[bool], None]:
    """The eager ``--version`` callback of a command line: prints ``PROG VERSION`` and exits."""

    def show(value: bool) -> None:
        if value:
            from gatekit import __version__

            typer.echo(f"{prog} {__version__}")
            raise typer.Exit()

    return show


MOUNTED: dict[str, str] = {}
"""A command line's name -> how it was called where another mounts it (``gatekit train`` runs
``gatekit-train``'s commands: :func:`gatekit.cli.train` sets it)."""


def invoked_as(prog: str) -> str:
    """The name errors and warnings start with: how the user called the command line."""
    return MOUNTED.get(prog, prog)


def error_boundary(prog: str) -> Callable[[Callable], Callable]:
    """The one place GatekitError becomes ``PROG: error: ...`` on stderr and exit code 1
    (shared with ``gatekit-train``)."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            caught: list = []
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", GatekitDeprecation)
                    warnings.simplefilter("always", GatekitNote)
                    try:
                        return fn(*args, **kwargs)
                    except GatekitError as e:
                        typer.echo(f"{invoked_as(prog)}: error: {e}", err=True)
                        raise typer.Exit(code=1) from None
            finally:
                show_warnings(invoked_as(prog), caught)

        return wrapper

    return decorate


def show_warnings(prog: str, caught) -> None:
    """The warnings a command caught, each once, after the command (outside the recording, so
    showing one never records another: a warning can never loop): gatekit's own as one plain
    line, anything else as Python shows it."""
    seen = set()
    for w in list(caught):
        key = (w.category, str(w.message), w.filename, w.lineno)
        if key in seen:
            continue
        seen.add(key)
        if issubclass(w.category, GatekitDeprecation):
            typer.echo(f"{prog}: warning: {w.message}", err=True)
        elif issubclass(w.category, GatekitNote):
            typer.echo(f"{prog}: note: {w.message}", err=True)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


@contextlib.contextmanager
def progress(quiet: bool = False):
    """Scoring progress ``(done, total, checkpoint)`` for the duration of a ``with`` block: the
    display of :mod:`gatekit.progress` on stderr (a bar with ETA on a terminal, plain lines
    otherwise; no colour under NO_COLOR), None with ``-q``. The display is closed on the way out, Ctrl-C included."""
    from gatekit.progress import progress as display

    shown = display("scoring", quiet=quiet)
    try:
        yield None if shown is None else shown.update
    finally:
        if shown is not None:
            shown.close()


def check_out_paths(inputs=(), **paths) -> None:
    """Output paths are checked before any work starts (not after minutes of scoring): a file
    name in an existing folder, never one of the ``inputs`` or inside one
    (:func:`gatekit.io.files.check_outputs`)."""
    from gatekit.io.files import check_outputs

    check_outputs({f"--{opt}": p for opt, p in paths.items()}, list(inputs))


def write_json(obj, dest: pathlib.Path | None) -> None:
    from gatekit.io import to_jsonable, write_text

    text = json.dumps(to_jsonable(obj), indent=1) + "\n"
    if str(dest) == "-":
        typer.echo(text, nl=False)
    elif dest is not None:
        write_text(dest, text)


def quiet_event_loop_noise() -> None:
    """Orbax's async machinery can report ``RuntimeError: Event loop is closed`` as an
    "unraisable" exception at interpreter exit, once per pending callback (up to ~100 tracebacks
    after reading damaged data). The work is done by then and the real problem was already
    reported; drop exactly that message and let every other one through."""
    previous = sys.unraisablehook

    def hook(unraisable):
        exc = unraisable.exc_value
        if isinstance(exc, RuntimeError) and "Event loop is closed" in str(exc):
            return
        previous(unraisable)

    sys.unraisablehook = hook


def click_command(typer_app: typer.Typer):
    """The click command behind a typer app, with plain metavars (``--probe PATH``, ``-t X``, not
    ``<path>`` / ``<float>``; arguments as ``SOURCES...``) for every option that takes a value."""
    root = typer.main.get_command(typer_app)
    kinds = {"Path": "PATH", "float": "X", "int": "N", "str": "TEXT"}

    def fix(cmd):
        for sub in (getattr(cmd, "commands", None) or {}).values():
            fix(sub)
        for param in cmd.params:
            if param.param_type_name == "option" and not param.is_flag and not param.count:
                param.metavar = kinds.get(param.bare_type(), "VALUE")
            elif param.param_type_name == "argument":
                param.metavar = param.name.upper()
                param.display_type_rich = lambda ctx: None  # the metavar says it; no "<list[Path]>"

    fix(root)
    return root


CACHE_ENV = "GATEKIT_COMPILATION_CACHE"


def enable_compilation_cache(environ=os.environ) -> str | None:
    """Turns on JAX's persistent compilation cache for this process (before JAX is imported), so
    a second identical command starts its first epoch without compiling again.

    The folder: ``$GATEKIT_COMPILATION_CACHE`` if set, else ``$XDG_CACHE_HOME/gatekit/jax``
    (default ``~/.cache/gatekit/jax``); ``GATEKIT_COMPILATION_CACHE=0`` (or ``off``) disables it,
    and a ``JAX_COMPILATION_CACHE_DIR`` already set is left alone. Returns the folder in use, or
    None when disabled or not writable (then JAX simply compiles, as without a cache).
    """
    value = environ.get(CACHE_ENV, "").strip()
    if value.lower() in ("0", "off", "false", "no", "none"):
        return None
    if environ.get("JAX_COMPILATION_CACHE_DIR"):
        return environ["JAX_COMPILATION_CACHE_DIR"]
    home = environ.get("XDG_CACHE_HOME") or str(pathlib.Path.home() / ".cache")
    path = pathlib.Path(value) if value else pathlib.Path(home) / "gatekit" / "jax"
    from gatekit.io.files import owning_folder

    owner = owning_folder(path if path.is_dir() else path.parent) if path.is_absolute() or value else None
    if owner is not None:  # JAX's cache files would fill a run's (or race's) folder
        print(f"gatekit: {CACHE_ENV}={value}: lies inside {owner[0]} ({owner[1]}); the compilation cache is off for "
              f"this command (point it outside every run)", file=sys.stderr)
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    environ["JAX_COMPILATION_CACHE_DIR"] = str(path)
    # cache every program that took measurable time to compile (the default skips those < 1 s)
    environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
    if "jax" in sys.modules and environ is os.environ:  # imported already: JAX read its settings then
        import jax

        jax.config.update("jax_compilation_cache_dir", str(path))
        jax.config.update("jax_persistent_cache_min_compile_time_secs",
                          float(environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))
    return str(path)


def run_app(app: typer.Typer, prog: str) -> None:
    """A command line's ``main``: the compilation cache on, Orbax's exit noise off, Ctrl-C kept, plain metavars."""
    from gatekit.interrupts import catch_ctrl_c

    enable_compilation_cache()
    quiet_event_loop_noise()
    with catch_ctrl_c():  # a Ctrl-C is never lost where it lands (a GC callback), see gatekit.interrupts
        click_command(app)(prog_name=prog)

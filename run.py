"""Command-line front end: run a simulator, print it beside its theory, write results, config and figure.

    python run.py --sim=mfld --particles=4096
    python run.py --sim=mfld --preset=linear_oracle --sweep=particles=2,8,32,128 --seeds=64 --x64
    python run.py --help

    python run.py --sim=mfld --sweep=temperature=0.01,0.1 --seeds=1000 --chunk=256 --out=runs/big
    python run.py --resume=runs/big                  # after an interruption: redoes nothing finished
    python run.py --gallery                          # every preset's figure into docs/figures/

Every config field of every simulator is a flag; a flag that is not a field of the chosen simulator is an error.
Multi-host: `--distributed` on every host (coordinator, process count and id as flags or JAX_* variables); only
process 0 writes. Exit status: 0 when the run finished, 1 when it diverged (results up to the divergence are
written), 2 on bad input.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # XLA's C++ log: cache loads warn about tuning flags as if CPUs

from absl import app, flags, logging

import sims
from dynamics import config as config_lib

FLAGS = flags.FLAGS
_ENGINE_FLAGS = ("sim", "preset", "sweep", "seeds", "seed", "out", "x64", "quiet", "scaling", "chunk",
                 "memory_limit", "resume", "checkpoint_seconds", "distributed", "coordinator_address",
                 "num_processes", "process_id", "compilation_cache", "gallery")
_OWNERS: dict[str, list[str]] = {}  # config field -> the sims that have it


def define_flags() -> None:
    """The engine's flags, then one flag per config field of every registered sim (built-in or from an installed
    package's entry points), its help naming the sims that have it. Idempotent."""
    if "sim" in FLAGS:
        return
    flags.DEFINE_string("sim", "mfld", f"simulator: one of {', '.join(sims.names())}")
    flags.DEFINE_string("preset", None, "named preset of the simulator's config (configs/<sim>.py)")
    flags.DEFINE_multi_string("sweep", [], "PARAM=v1,v2,...: sweep PARAM over these values (repeatable)")
    flags.DEFINE_integer("seeds", 1, "number of seeds (vmapped), starting at --seed (a preset's default: enough "
                         "for conclusive verdicts)")
    flags.DEFINE_integer("seed", 0, "first seed; seed s uses jax.random.key(s)")
    flags.DEFINE_string("out", None, "output directory (default runs/<sim>-<timestamp>)")
    flags.DEFINE_bool("x64", False, "float64 everywhere (set before any JAX computation)")
    flags.DEFINE_bool("quiet", False, "no progress lines")
    flags.DEFINE_bool("scaling", True, "without --sweep, also run the simulator's scaling ladder "
                      "(mfld: particles N/8, N/4, N/2) so the figure shows the 1/N law")
    flags.DEFINE_integer("chunk", None, "members per compiled program (default: as many as fit in --memory_limit)")
    flags.DEFINE_string("memory_limit", None, "device memory a program may use, e.g. 2GB (default: the device's "
                        "limit; on CPU 80% of available memory)")
    flags.DEFINE_string("resume", None, "continue the interrupted run in this directory; redoes nothing finished")
    flags.DEFINE_float("checkpoint_seconds", 60.0, "seconds between checkpoints of a long scan")
    flags.DEFINE_bool("distributed", False, "run one sweep across hosts through jax.distributed")
    flags.DEFINE_string("coordinator_address", None, "with --distributed: host:port of process 0 "
                        "(else JAX_COORDINATOR_ADDRESS)")
    flags.DEFINE_integer("num_processes", None, "with --distributed: process count (else JAX_NUM_PROCESSES)")
    flags.DEFINE_integer("process_id", None, "with --distributed: this process's id (else JAX_PROCESS_ID)")
    flags.DEFINE_string("compilation_cache", "default", "persistent compilation cache directory ('default': a user "
                        "cache keyed by jax version and CPU; '' turns it off)")
    flags.DEFINE_bool("gallery", False, "run every simulator's presets and write their figures and tables to "
                      "docs/figures/")
    helps: dict[str, list[str]] = {}
    bools = set()
    for name, sim in sims.registry().items():
        for field, default, units, allowed, doc in config_lib.describe(sim.config):
            _OWNERS.setdefault(field, []).append(name)
            helps.setdefault(field, []).append(f"[{name}] {doc} ({units}; {allowed}; default {default})")
        bools |= {f.name for f in config_lib.fields(sim.config) if config_lib.field_type(f) is bool}
    for field, lines in helps.items():
        # A boolean field is a switch: --nonnegative, --nononnegative or --nonnegative=false.
        (flags.DEFINE_bool if field in bools else flags.DEFINE_string)(field, None, "; ".join(lines))


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def _usage() -> str:
    lines = [__doc__.strip(), "", "Engine flags:"]
    lines += [f"  --{n}: {FLAGS[n].help} (default {FLAGS[n].default})" for n in _ENGINE_FLAGS]
    for name, sim in sims.registry().items():
        lines += ["", f"Parameters of --sim={name} (presets: {', '.join(sim.presets) or 'none'}):"]
        for field, default, units, allowed, doc in config_lib.describe(sim.config):
            lines.append(f"  --{field}={default}  {doc}  [{units}; {allowed}]")
    return "\n".join(lines)


def _chosen_sim(argv) -> str:
    for arg in argv:
        if arg.startswith("--sim="):
            return arg.split("=", 1)[1]
    return FLAGS["sim"].default


def _parse_flags(argv):
    if any(a in ("-h", "-?", "--help", "--helpshort", "--helpfull") for a in argv[1:]):
        print(_usage())
        sys.exit(0)
    try:
        return FLAGS(argv)
    except flags.UnrecognizedFlagError as e:
        given = next((a for a in argv[1:] if a.lstrip("-").split("=", 1)[0] == e.flagname), f"--{e.flagname}")
        sim = _chosen_sim(argv)
        allowed = sorted({*(f for f, owners in _OWNERS.items() if sim in owners), *_ENGINE_FLAGS})
        _fail(f"{given}: not a parameter of {sim!r}; allowed: {', '.join(allowed)}")
    except flags.Error as e:
        message = str(e).splitlines()[0]
        bad_bool = re.match(r"flag (--\w+=\S*): .*Non-boolean", message)
        _fail(f"{bad_bool.group(1)}: must be true or false (or the switch {bad_bool.group(1).split('=')[0]})"
              if bad_bool else message)


def _parse_sweep(sim, entries) -> dict:
    grid = {}
    names = sorted(f.name for f in config_lib.fields(sim.config))
    for entry in entries:
        name, sep, values = entry.partition("=")
        if not sep or not name:
            _fail(f"--sweep={entry}: must be PARAM=v1,v2,...")
        if name not in names:
            _fail(f"--sweep={entry}: {name!r} is not a parameter of {FLAGS.sim!r}; allowed: {', '.join(names)}")
        grid[name] = [config_lib.coerce(sim.config, name, v) for v in values.split(",") if v != ""]
    return grid


def _bytes(text: str | None) -> int | None:
    if text is None:
        return None
    match = re.fullmatch(r"\s*([0-9.]+)\s*([kmgt]?)i?b?\s*", text.lower())
    if not match or float(match.group(1)) <= 0:
        _fail(f"--memory_limit={text}: must be a positive size such as 512MB or 8GB")
    return int(float(match.group(1)) * 1024 ** "_kmgt".index(match.group(2) or "_"))


def _setup_jax():
    import jax
    from dynamics import devices
    if FLAGS.distributed:
        devices.initialize_distributed(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
    if FLAGS.x64:
        jax.config.update("jax_enable_x64", True)
    cache = devices.default_cache_dir() if FLAGS.compilation_cache == "default" else FLAGS.compilation_cache
    if cache:
        devices.enable_compilation_cache(cache)
    return jax


def main(argv):
    if len(argv) > 1:
        _fail(f"unexpected argument {argv[1]!r}; parameters are flags, e.g. --particles=4096")
    logging.set_verbosity(logging.WARNING)
    if FLAGS.chunk is not None and FLAGS.chunk < 1:
        _fail(f"--chunk={FLAGS.chunk}: must be an integer >= 1")
    if FLAGS.resume:  # before JAX is set up: the saved flags include the precision
        _restore_flags(FLAGS.resume)
    limit = _bytes(FLAGS.memory_limit)
    jax = _setup_jax()
    if FLAGS.gallery:
        import gallery
        return gallery.make_all()
    try:
        sim = sims.load(FLAGS.sim)
        params = {}
        for field, owners in _OWNERS.items():
            if FLAGS[field].value is not None:
                if FLAGS.sim not in owners:
                    _fail(f"--{field}={FLAGS[field].value}: not a parameter of {FLAGS.sim!r} "
                          f"(it belongs to {', '.join(owners)})")
                params[field] = FLAGS[field].value
        if FLAGS.seeds < 1:
            _fail(f"--seeds={FLAGS.seeds}: must be an integer >= 1")
        grid = _parse_sweep(sim, FLAGS.sweep)
        seeds = FLAGS.seeds if FLAGS["seeds"].present else None
        stamp = f"{FLAGS.sim}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
        out = FLAGS.resume or FLAGS.out or os.path.join("runs", stamp)
        options = dict(preset=FLAGS.preset, grid=grid, seeds=seeds, seed=FLAGS.seed, scaling=FLAGS.scaling,
                       chunk=FLAGS.chunk, memory_limit=limit, **params)
        writer = jax.process_index() == 0  # only process 0 prints and writes

        def checked():  # bad input has been refused (one line, nothing written); now the run starts
            if not FLAGS.resume:
                try:
                    _save_argv(out)
                except OSError as e:
                    _fail(f"--out={out}: cannot write there ({e.strerror}); allowed: a directory that can be "
                          "created and written")
            if not FLAGS.quiet and writer:
                print(f"{FLAGS.sim}: {jax.device_count()} {jax.default_backend()} device(s) on "
                      f"{jax.process_count()} process(es), jax {jax.__version__}, "
                      f"{'float64' if FLAGS.x64 else 'float32'}; checkpoints in {out}/checkpoint", file=sys.stderr)

        ds, rows = sims.execute(FLAGS.sim, out, resume=bool(FLAGS.resume), quiet=FLAGS.quiet,
                                checkpoint_seconds=FLAGS.checkpoint_seconds, writer=writer, argv=sys.argv[1:],
                                on_checked=checked, **options)
    except config_lib.ConfigError as e:
        _fail(str(e))
    if not writer:
        return
    from dynamics import report
    print(report.format_table(rows))
    print(f"wrote {out}/results.nc, config.json, comparison.txt/.csv/.tex, {FLAGS.sim}.png  "
          f"(compile {ds.attrs['compile_seconds']:.1f}s, run {ds.attrs['run_seconds']:.1f}s)")
    where = sims.diverged(ds)
    if where:
        print(f"error: diverged: NaN or inf at {where}; the records before it are in {out}/results.nc",
              file=sys.stderr)
        sys.exit(1)


# Flags that may accompany --resume: they change how a run is carried out, never what it computes.
_RESUME_FLAGS = ("resume", "quiet", "checkpoint_seconds", "compilation_cache", "distributed", "coordinator_address",
                 "num_processes", "process_id")


def _restore_flags(directory: str) -> None:
    """--resume=DIR: the interrupted run's own flags, saved at its start with its precision made explicit, so the
    same sweep continues exactly. Any flag that could change what is computed is refused beside --resume."""
    given = sorted({a.lstrip("-").split("=", 1)[0] for a in sys.argv[1:] if a.startswith("--")})
    extra = [f"--{g}" for g in given if g not in _RESUME_FLAGS and g.removeprefix("no") not in _RESUME_FLAGS]
    if extra:
        _fail(f"--resume={directory}: {', '.join(extra)} given; a resumed run takes every parameter and the precision "
              f"from the interrupted one; allowed beside --resume: {', '.join('--' + f for f in _RESUME_FLAGS[1:])}")
    path = os.path.join(directory, "checkpoint", "argv.json")
    if not os.path.exists(path):
        _fail(f"--resume={directory}: no interrupted run there (no checkpoint/argv.json); allowed: the --out "
              "directory of a run that did not finish")
    with open(path) as f:
        FLAGS([sys.argv[0], *json.load(f)])
    FLAGS.resume = directory


def _save_argv(out: str) -> None:
    """The run's flags for --resume, with the precision in force written out (it may come from JAX_ENABLE_X64)."""
    from dynamics import export
    import jax
    if jax.process_index() == 0:
        argv = [a for a in sys.argv[1:] if not a.startswith("--resume") and a.split("=")[0] not in ("--x64", "--nox64")]
        export.write_json([*argv, f"--x64={str(bool(jax.config.jax_enable_x64)).lower()}"],
                          os.path.join(out, "checkpoint", "argv.json"))


def cli():
    """The console script `training-dynamics` (the same as `python run.py`)."""
    define_flags()
    app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
    cli()

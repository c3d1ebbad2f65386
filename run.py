"""Command-line front end: run a simulator, print it beside its theory, write results, config and figure.

    python run.py --sim=mfld --particles=4096
    python run.py --sim=mfld --preset=linear_oracle --sweep=particles=2,8,32,128 --seeds=64 --x64
    python run.py --help

Every config field of every simulator is a flag; a flag that is not a field of the chosen simulator is an error.
Exit status: 0 when the run finished, 1 when it diverged (results up to the divergence are written), 2 on bad input.
"""

from __future__ import annotations

import datetime
import os
import sys

from absl import app, flags, logging

import sims
from dynamics import config as config_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("sim", "mfld", f"simulator: one of {', '.join(sims.NAMES)}")
flags.DEFINE_string("preset", None, "named preset of the simulator's config (configs/<sim>.py)")
flags.DEFINE_multi_string("sweep", [], "PARAM=v1,v2,...: sweep PARAM over these values (repeatable)")
flags.DEFINE_integer("seeds", 1, "number of seeds (vmapped), starting at --seed")
flags.DEFINE_integer("seed", 0, "first seed; seed s uses jax.random.key(s)")
flags.DEFINE_string("out", None, "output directory (default runs/<sim>-<timestamp>)")
flags.DEFINE_bool("x64", False, "float64 everywhere (set before any JAX computation)")
flags.DEFINE_bool("quiet", False, "no progress lines")
flags.DEFINE_bool("scaling", True, "without --sweep, also run the simulator's scaling ladder "
                  "(mfld: particles N/8, N/4, N/2) so the figure shows the 1/N law")
_ENGINE_FLAGS = ("sim", "preset", "sweep", "seeds", "seed", "out", "x64", "quiet", "scaling")

_OWNERS: dict[str, list[str]] = {}  # config field -> the sims that have it
_HELP: dict[str, list[str]] = {}
for _name in sims.NAMES:
    for _field, _default, _units, _allowed, _doc in config_lib.describe(sims.load(_name).Config):
        _OWNERS.setdefault(_field, []).append(_name)
        _HELP.setdefault(_field, []).append(f"[{_name}] {_doc} ({_units}; {_allowed}; default {_default})")
for _field, _lines in _HELP.items():
    flags.DEFINE_string(_field, None, "; ".join(_lines))


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def _usage() -> str:
    lines = [__doc__.strip(), "", "Engine flags:"]
    lines += [f"  --{n}: {FLAGS[n].help} (default {FLAGS[n].default})" for n in _ENGINE_FLAGS]
    for name in sims.NAMES:
        module = sims.load(name)
        lines += ["", f"Parameters of --sim={name} (presets: {', '.join(module.PRESETS)}):"]
        for field, default, units, allowed, doc in config_lib.describe(module.Config):
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
        _fail(str(e).splitlines()[0])


def _parse_sweep(module, entries) -> dict:
    grid = {}
    names = sorted(f.name for f in config_lib.fields(module.Config))
    for entry in entries:
        name, sep, values = entry.partition("=")
        if not sep or not name:
            _fail(f"--sweep={entry}: must be PARAM=v1,v2,...")
        if name not in names:
            _fail(f"--sweep={entry}: {name!r} is not a parameter of {FLAGS.sim!r}; allowed: {', '.join(names)}")
        grid[name] = [config_lib.coerce(module.Config, name, v) for v in values.split(",") if v != ""]
    return grid


def main(argv):
    if len(argv) > 1:
        _fail(f"unexpected argument {argv[1]!r}; parameters are flags, e.g. --particles=4096")
    logging.set_verbosity(logging.WARNING)
    import jax
    if FLAGS.x64:
        jax.config.update("jax_enable_x64", True)
    try:
        module = sims.load(FLAGS.sim)
        params = {}
        for field, owners in _OWNERS.items():
            if FLAGS[field].value is not None:
                if FLAGS.sim not in owners:
                    _fail(f"--{field}={FLAGS[field].value}: not a parameter of {FLAGS.sim!r} "
                          f"(it belongs to {', '.join(owners)})")
                params[field] = FLAGS[field].value
        if FLAGS.seeds < 1:
            _fail(f"--seeds={FLAGS.seeds}: must be an integer >= 1")
        config = sims.make_config(FLAGS.sim, FLAGS.preset, **params)
        grid = _parse_sweep(module, FLAGS.sweep)
        if not grid and FLAGS.preset in getattr(module, "PRESET_SWEEPS", {}):
            grid = dict(module.PRESET_SWEEPS[FLAGS.preset])
        elif not grid and FLAGS.scaling:
            grid = module.report.scaling_grid(config)
        sims.check(FLAGS.sim, grid, FLAGS.seeds, seed=FLAGS.seed, preset=FLAGS.preset, **params)
    except config_lib.ConfigError as e:
        _fail(str(e))
    print(f"{FLAGS.sim}: {len(jax.devices())} {jax.default_backend()} device(s), jax {jax.__version__}, "
          f"{'float64' if FLAGS.x64 else 'float32'}; sweep {grid or 'none'}, {FLAGS.seeds} seed(s)", file=sys.stderr)
    ds = sims.sweep(FLAGS.sim, grid, FLAGS.seeds, seed=FLAGS.seed, preset=FLAGS.preset, quiet=FLAGS.quiet, **params)
    from dynamics import export, report
    out = FLAGS.out or os.path.join("runs", f"{FLAGS.sim}-{datetime.datetime.now():%Y%m%d-%H%M%S}")
    if jax.process_index() == 0:  # results first: nothing computed is lost to a later failure
        export.write_netcdf(ds, os.path.join(out, "results.nc"))
        export.write_json(export.decoded_attrs(ds), os.path.join(out, "config.json"))
    print(report.format_table(module.report.compare(ds)))
    if jax.process_index() == 0:
        export.write_figure(module.report.figure(ds), os.path.join(out, f"{FLAGS.sim}.png"))
    print(f"wrote {out}/results.nc, config.json, {FLAGS.sim}.png  (compile {ds.attrs['compile_seconds']:.1f}s, "
          f"run {ds.attrs['run_seconds']:.1f}s)")
    diverged = ds.nonfinite_step.where(ds.nonfinite_step >= 0)
    if diverged.notnull().any():
        first = int(diverged.min())
        where = ds.nonfinite_step.where(ds.nonfinite_step == first, drop=True)
        at = " ".join(f"{d}={where[d].values[0]}" for d in where.dims)
        print(f"error: diverged: NaN or inf at step {first} ({at}); the records before it are in "
              f"{out}/results.nc", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main, flags_parser=_parse_flags)

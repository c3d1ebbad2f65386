"""The contract between a simulator and the engine: one declared record, `Simulator`, and nothing else is consulted.

A sim is a `Simulator`; the engine reads its fields and never imports the sim. Required:

    name            the sim's name, used by --sim, the registry, the results' attrs (stored only here)
    config          its config class (`dynamics.config.config`), with static `steps` and `record_every` fields;
                    every field is a flag of the CLI and a parameter of `sims.run`/`sims.sweep`
    setup           (config, key[, prepared]) -> context: the member's constants (data, targets, theory), built once
                    per member and passed to every call below, never carried through the scan (`trajectory`)
    init            (config, context, key) -> state: the pytree that evolves
    step            (config, context, state, key) -> state: one step of the dynamic
    record          (config, context, state) -> {name: array}: observables every `record_every` steps
    final           (config, context, state) -> {name: array}: the last state's outputs and the theory, once
    outputs         {name: Output}: every output of `record` and `final`, declared once with its axes, meaning
                    and units; `theory_<x>` outputs name the output `x` they predict
    compare         (Dataset) -> [report.Row]: simulation beside theory, each row with a test (`dynamics.report`)

Optional, with defaults:

    figure          (Dataset) -> matplotlib Figure, or None (default: no figure)
    presets         {preset: {field: value}}: named configs (default none)
    preset_sweeps   {preset: {field: [values]}}: the sweep a preset runs when none is given
    preset_seeds    {preset: seeds}: the seeds a preset runs when --seeds is not given (conclusive verdicts)
    gallery         {preset: grid or None}: the presets `python run.py --gallery` runs and draws, each with its
                    preset sweep (None) or the grid given (default: every preset with its sweep)
    scaling_grid    (config) -> {field: [values]}: the sweep a plain CLI run adds (e.g. an N ladder; default none)
    implied_preset  (params) -> preset or None: the preset some flags imply (e.g. --task=xor)
    workspace       (config) -> bytes of one member's step temporaries beyond its state (the memory estimate)
    prepare         (config) -> pytree of arrays: host-side work per member before the run (an LP, an SDP),
                    handed to `setup` as `prepared` (default none)
    watch           (state) -> the part of the state that must stay finite; the first step where it does not is
                    reported as the divergence (default: the whole state)

The engine checks `steps % record_every == 0` once, for every sim (`check_steps`); `simulate(sim, config, key)` runs
one member as one pure function that `jit` and `vmap` take.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple

from dynamics import trajectory
from dynamics.config import ConfigError

__all__ = ["Output", "prediction", "Simulator", "simulate", "check_steps", "seedless", "dims", "gallery_runs"]


class Output(NamedTuple):
    """One output of a sim. dims: its axes after the member axes (records get `step` in front); long_name and units:
    CF attributes in results.nc ("1" for dimensionless); seedless: the same for every seed (data, theory), stored
    once without a `seed` axis; predicts: for a theory value, the name of the simulated output it predicts."""
    long_name: str
    units: str = "1"
    dims: tuple[str, ...] = ()
    seedless: bool = False
    predicts: str | None = None


def prediction(long_name: str, predicts: str | None = None, units: str = "1", dims: tuple[str, ...] = ()) -> Output:
    """A closed-form or solver value: seedless, and naming what it predicts."""
    return Output(long_name, units, dims, True, predicts)


def _none(*_):
    return None


def _empty(*_):
    return {}


def _zero(*_):
    return 0


def _whole(state):
    return state


class Simulator(NamedTuple):
    """A sim, declared once (fields: the module docstring)."""
    name: str
    config: type
    setup: Callable[..., Any]
    init: Callable[..., Any]
    step: Callable[..., Any]
    record: Callable[..., dict]
    final: Callable[..., dict]
    outputs: Mapping[str, Output]
    compare: Callable[[Any], list]
    figure: Callable[[Any], Any] | None = None
    presets: Mapping[str, dict] = {}
    preset_sweeps: Mapping[str, dict] = {}
    preset_seeds: Mapping[str, int] = {}
    gallery: Mapping[str, dict | None] | None = None
    scaling_grid: Callable[[Any], dict] = _empty
    implied_preset: Callable[[dict], str | None] = _none
    workspace: Callable[[Any], int] = _zero
    prepare: Callable[[Any], Any] | None = None
    watch: Callable[[Any], Any] = _whole

    @property
    def simulation(self) -> trajectory.Simulation:
        return trajectory.Simulation(self.setup, self.init, self.step, self.record, self.final, self.watch)


def dims(sim: Simulator, name: str) -> tuple[str, ...]:
    """The declared axes of output `name` (the engine's own outputs, such as `nonfinite_step`, have none)."""
    return sim.outputs[name].dims if name in sim.outputs else ()


def seedless(sim: Simulator) -> frozenset:
    return frozenset(name for name, out in sim.outputs.items() if out.seedless)


def gallery_runs(sim: Simulator) -> dict[str, dict | None]:
    """{preset: grid or None (its preset sweep)} that the gallery runs."""
    return dict(sim.gallery) if sim.gallery is not None else dict.fromkeys(sim.presets)


def check_steps(config) -> None:
    """Records fall every `record_every` steps: it must divide `steps` (else the last steps would go unrecorded)."""
    if config.steps % config.record_every:
        raise ConfigError(f"--record_every={config.record_every}: must divide --steps={config.steps}; allowed: a "
                          f"divisor of {config.steps}")


def simulate(sim: Simulator, config, key) -> dict:
    """One whole run as a pure function that `jax.jit` and `jax.vmap` take: final outputs and stacked records."""
    prepared = (sim.prepare(config),) if sim.prepare else ()
    return trajectory.simulate(sim.simulation, config, key, *prepared, steps=config.steps,
                               record_every=config.record_every)

"""`dynamics.config`: string coercion, validation with one-line errors, traced/static pytree split, `describe`.

`Tiny` has one field of each kind the engine uses; its annotations are real types (no `from __future__ import
annotations`), while `configs.mfld.Config` has string annotations, so both branches of the type lookup are covered.
"""

import dataclasses
import math

import chex
import jax
import jax.numpy as jnp
import pytest

from configs.mfld import Config
from dynamics import config as config_lib
from dynamics.config import ConfigError, param


@config_lib.config
class Tiny:
    sim_name = "tiny"
    count: int = param(3, "n, a count", units="count", low=1)
    rate: float = param(0.25, "eta, a rate in (0, 1]", units="per step", traced=True, low=0.0, high=1.0,
                        low_inclusive=False)
    frac: float = param(0.5, "p, a fraction in [0, 1)", traced=True, low=0.0, high=1.0, high_inclusive=False)
    flag: bool = param(False, "a switch")
    mode: str = param("a", "a discrete choice", choices=("a", "b"))


# --- coercion -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, text, want", [
    ("count", "7", 7),
    ("count", "1e3", 1000),
    ("count", "-2", -2),  # coercion only parses; the range is `check`'s job
    ("rate", "0.125", 0.125),
    ("rate", "1", 1.0),
    ("flag", "true", True),
    ("flag", "FALSE", False),
    ("flag", "1", True),
    ("flag", "0", False),
    ("flag", "yes", True),
    ("flag", "no", False),
    ("mode", "b", "b"),
])
def test_coerce_parses_command_line_strings_to_the_field_type(name, text, want):
    got = config_lib.coerce(Tiny, name, text)
    assert got == want and type(got) is type(want), (got, type(got))


@pytest.mark.parametrize("name, value", [
    ("count", "abc"),
    ("count", "1.5"),
    ("count", 1.5),
    ("count", "inf"),
    ("count", "nan"),
    ("rate", "fast"),
    ("rate", ""),
    ("flag", "maybe"),
    ("flag", "2"),
])
def test_coerce_of_a_bad_type_raises_one_line_naming_flag_value_and_type(name, value):
    with pytest.raises(ConfigError) as err:
        config_lib.coerce(Tiny, name, value)
    message = str(err.value)
    assert "\n" not in message
    assert f"--{name}={value}" in message
    expected_type = {"count": "an integer", "rate": "a float", "flag": "a bool"}[name]
    assert f"must be {expected_type}" in message, message


def test_coerce_of_a_mfld_field_uses_its_string_annotation():
    assert config_lib.coerce(Config, "particles", "64") == 64
    with pytest.raises(ConfigError, match=r"^--particles=2\.5: must be an integer >= 1$"):
        config_lib.coerce(Config, "particles", "2.5")


def test_coerce_parses_a_large_integer_string_exactly():
    assert config_lib.coerce(Config, "data_seed", str(2 ** 53 + 1)) == 2 ** 53 + 1


# --- range and choice checks ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, value", [
    ("count", 1),          # low=1 inclusive
    ("rate", 1.0),         # high=1 inclusive
    ("rate", 1e-12),       # just above the exclusive low end
    ("frac", 0.0),         # low=0 inclusive
    ("frac", 0.999),       # just below the exclusive high end
    ("mode", "b"),
])
def test_check_accepts_inclusive_ends_and_interior_values(name, value):
    config_lib.check(Tiny, name, value)


@pytest.mark.parametrize("name, value, allowed", [
    ("count", 0, "must be an integer >= 1"),
    ("rate", 0.0, "must be a float > 0 and <= 1"),          # exclusive low end
    ("rate", 1.5, "must be a float > 0 and <= 1"),
    ("frac", 1.0, "must be a float >= 0 and < 1"),          # exclusive high end
    ("frac", -0.1, "must be a float >= 0 and < 1"),
    ("frac", math.nan, "must be a float >= 0 and < 1"),     # NaN compares false with both ends
    ("frac", math.inf, "must be a float >= 0 and < 1"),
    ("mode", "c", "must be one of a, b"),
])
def test_check_rejects_exclusive_ends_and_outside_values_with_one_line(name, value, allowed):
    with pytest.raises(ConfigError) as err:
        config_lib.check(Tiny, name, value)
    assert str(err.value) == f"--{name}={value}: {allowed}"


def test_check_of_an_unknown_name_raises_config_error():
    with pytest.raises(ConfigError, match="bogus"):
        config_lib.check(Tiny, "bogus", 1)


# --- build and validate ---------------------------------------------------------------------------------------------

def test_build_parses_strings_and_keeps_defaults():
    cfg = config_lib.build(Tiny, count="5", rate="0.5", flag="true")
    assert cfg == Tiny(count=5, rate=0.5, frac=0.5, flag=True, mode="a")


@pytest.mark.parametrize("cls, name", [(Tiny, "bogus"), (Config, "partcles")])
def test_build_with_an_unknown_name_raises_one_line_listing_the_allowed_names(cls, name):
    with pytest.raises(ConfigError) as err:
        config_lib.build(cls, **{name: "1"})
    message = str(err.value)
    assert "\n" not in message and f"--{name}" in message
    assert all(f.name in message for f in dataclasses.fields(cls)), message


@pytest.mark.parametrize("params, needle", [
    (dict(count="0"), "--count=0"),
    (dict(mode="c"), "--mode=c"),
    (dict(rate="0"), "--rate=0.0"),
])
def test_build_rejects_out_of_range_values(params, needle):
    with pytest.raises(ConfigError, match=f"^{needle}: must be "):
        config_lib.build(Tiny, **params)


def test_build_runs_the_configs_cross_field_check():
    # mfld's check(): the tanh2d neuron takes scalar inputs (each field alone is in range).
    with pytest.raises(ConfigError, match=r"^--dim=8: model=tanh2d has scalar inputs; must be 1$"):
        config_lib.build(Config, model="tanh2d", dim="8")


def test_validate_rejects_a_config_constructed_out_of_range():
    with pytest.raises(ConfigError, match=r"^--particles=0: "):
        config_lib.validate(Config(particles=0))


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Tiny().count = 4


# --- traced fields are pytree leaves, static fields are metadata ----------------------------------------------------

def test_tree_leaves_of_a_config_are_exactly_its_traced_values_in_field_order():
    cfg = Tiny(count=9, rate=0.75, frac=0.125, flag=True, mode="b")
    assert jax.tree_util.tree_leaves(cfg) == [0.75, 0.125]


def test_mfld_traced_leaves_are_the_traced_fields_and_shapes_are_static():
    cfg = Config()
    traced = [f.name for f in dataclasses.fields(cfg) if config_lib.is_traced(cfg, f.name)]
    assert jax.tree_util.tree_leaves(cfg) == [getattr(cfg, n) for n in traced]
    # Anything that sets a shape, a loop length or a branch must be compiled in, not traced.
    for name in ("particles", "ensemble", "steps", "record_every", "samples", "test_samples", "dim", "model",
                 "loss", "dataset"):
        assert not config_lib.is_traced(cfg, name), name
    for name in ("lr", "temperature", "l2"):
        assert config_lib.is_traced(cfg, name), name


def test_tree_map_changes_traced_fields_and_keeps_static_ones():
    doubled = jax.tree_util.tree_map(lambda x: 2 * x, Tiny(count=3, rate=0.25, frac=0.125, flag=True, mode="b"))
    assert doubled == Tiny(count=3, rate=0.5, frac=0.25, flag=True, mode="b")


def test_jit_does_not_retrace_when_only_a_traced_value_changes():
    @jax.jit
    @chex.assert_max_traces(n=1)
    def f(cfg):
        return cfg.rate * cfg.count + cfg.frac

    chex.assert_trees_all_close(f(Tiny(rate=0.25, frac=0.5)), 1.25)
    chex.assert_trees_all_close(f(Tiny(rate=0.5, frac=0.0)), 1.5)


def test_jit_retraces_when_a_static_value_changes():
    traces = []

    @jax.jit
    def f(cfg):
        traces.append(cfg.count)
        return jnp.ones(cfg.count) * cfg.rate

    f(Tiny(count=3))
    f(Tiny(count=3, rate=0.5))
    assert len(traces) == 1
    chex.assert_shape(f(Tiny(count=4)), (4,))
    assert traces == [3, 4]


def test_jit_of_a_mfld_config_retraces_on_particles_but_not_on_lr():
    traces = []

    @jax.jit
    def f(cfg):
        traces.append(cfg.particles)
        return jnp.full((cfg.particles,), cfg.lr * cfg.temperature)

    f(Config(particles=8, lr=0.1))
    f(Config(particles=8, lr=0.2, temperature=0.5))
    assert traces == [8]
    f(Config(particles=16, lr=0.1))
    assert traces == [8, 16]


# --- describe -------------------------------------------------------------------------------------------------------

def test_describe_gives_name_default_units_allowed_and_doc_of_every_field():
    assert config_lib.describe(Tiny) == [
        ("count", 3, "count", "an integer >= 1", "n, a count"),
        ("rate", 0.25, "per step", "a float > 0 and <= 1", "eta, a rate in (0, 1] [traced]"),
        ("frac", 0.5, "", "a float >= 0 and < 1", "p, a fraction in [0, 1) [traced]"),
        ("flag", False, "", "a bool", "a switch"),
        ("mode", "a", "", "one of a, b", "a discrete choice"),
    ]


def test_describe_lists_every_mfld_field_with_a_nonempty_doc():
    rows = config_lib.describe(Config)
    assert [r[0] for r in rows] == [f.name for f in dataclasses.fields(Config)]
    for name, _, _, allowed, doc in rows:
        assert doc.strip() and allowed.strip(), name

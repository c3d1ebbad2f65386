"""Configs: frozen dataclasses whose fields carry their documentation, units and validation.

A field is either *traced* or *static*:

* traced fields (learning rate, temperature, data seed, ...) are pytree leaves. A sweep vmaps them inside one
  compiled program, and a new value never recompiles;
* static fields (particle count, dimension, model choice, step count: anything that changes a shape or a
  branch) are pytree metadata. Each distinct combination is compiled once.

Configs are registered with `jax.tree_util.register_dataclass`, so `simulate(config, key)` can be jitted and
vmapped over a config whose traced leaves carry a batch axis. Validation is a separate call (`validate`), because
JAX rebuilds configs with tracers and placeholders as leaves.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax

__all__ = ["ConfigError", "param", "config", "validate", "build", "coerce", "fields", "field_type", "is_traced",
           "describe", "to_dict"]


class ConfigError(ValueError):
    """A bad parameter. Its message is one line that names the parameter, the value and what is allowed."""


def param(default: Any, doc: str, *, units: str = "", traced: bool = False, choices: tuple | None = None,
          low: float | None = None, high: float | None = None, low_inclusive: bool = True,
          high_inclusive: bool = True) -> Any:
    """A documented config field.

    Args:
      default: default value; its type (int, float, str, bool) is the field's type.
      doc: what the field means, in the paper's words, with the paper's symbol.
      units: units or the symbol's domain, shown by `--help`.
      traced: vmapped by sweeps (a pytree leaf) rather than compiled in (pytree metadata).
      choices: the allowed values of a discrete field.
      low, high: the allowed range; `low_inclusive`/`high_inclusive` say whether the ends are allowed.
    """
    meta = dict(doc=doc, units=units, traced=traced, choices=choices, low=low, high=high,
                low_inclusive=low_inclusive, high_inclusive=high_inclusive)
    return dataclasses.field(default=default, metadata=meta)


def config(cls):
    """Class decorator: a frozen dataclass registered as a pytree (traced fields are leaves)."""
    cls = dataclasses.dataclass(frozen=True)(cls)
    traced = [f.name for f in dataclasses.fields(cls) if f.metadata.get("traced")]
    static = [f.name for f in dataclasses.fields(cls) if not f.metadata.get("traced")]
    return jax.tree_util.register_dataclass(cls, data_fields=traced, meta_fields=static)


def fields(cls_or_config) -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(cls_or_config)


def is_traced(cls_or_config, name: str) -> bool:
    return bool(_field(cls_or_config, name).metadata.get("traced"))


def _field(cls_or_config, name: str) -> dataclasses.Field:
    for f in dataclasses.fields(cls_or_config):
        if f.name == name:
            return f
    raise ConfigError(f"unknown parameter {name!r}")


def field_type(f: dataclasses.Field) -> type:
    """The Python type (int, float, str, bool) of a config field."""
    return _type_of(f)


def _type_of(f: dataclasses.Field) -> type:
    # `from __future__ import annotations` turns annotations into strings.
    ann = f.type if isinstance(f.type, type) else {"int": int, "float": float, "str": str, "bool": bool}.get(
        str(f.type), type(f.default))
    return ann


def _allowed(f: dataclasses.Field) -> str:
    m = f.metadata
    typ = _type_of(f).__name__
    if m.get("choices"):
        return "one of " + ", ".join(map(str, m["choices"]))
    parts = []
    if m.get("low") is not None:
        parts.append(f"{'>=' if m['low_inclusive'] else '>'} {m['low']:g}")
    if m.get("high") is not None:
        parts.append(f"{'<=' if m['high_inclusive'] else '<'} {m['high']:g}")
    return f"{'an integer' if typ == 'int' else 'a ' + typ}" + (" " + " and ".join(parts) if parts else "")


def coerce(cls, name: str, value: Any) -> Any:
    """Converts `value` (possibly a command-line string) to field `name`'s type, or raises ConfigError."""
    f = _field(cls, name)
    typ = _type_of(f)
    try:
        if typ is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if typ is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            if isinstance(value, str):
                try:
                    return int(value)
                except ValueError:  # "1e3" is an integer too, when it is one exactly
                    as_float = float(value)
                    if not as_float.is_integer() or abs(as_float) > 2 ** 53:
                        raise
                    return int(as_float)
            return int(value)
        if typ is float:
            return float(value)
        return str(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"--{name}={value}: must be {_allowed(f)}") from None


def check(cls, name: str, value: Any) -> None:
    """Raises ConfigError if `value` is outside field `name`'s allowed set."""
    f = _field(cls, name)
    m = f.metadata
    bad = False
    if m.get("choices") is not None:
        bad = value not in m["choices"]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            bad = True
        if m.get("low") is not None:
            bad |= value < m["low"] if m["low_inclusive"] else value <= m["low"]
        if m.get("high") is not None:
            bad |= value > m["high"] if m["high_inclusive"] else value >= m["high"]
    if bad:
        raise ConfigError(f"--{name}={value}: must be {_allowed(f)}")


def validate(cfg) -> None:
    """Checks every field of a concrete config, then the config's own cross-field `check()` if it has one."""
    for f in dataclasses.fields(cfg):
        check(type(cfg), f.name, getattr(cfg, f.name))
    if hasattr(cfg, "check"):
        cfg.check()


def build(cls, **params):
    """A validated config from keyword values (strings are parsed). Unknown names raise ConfigError."""
    names = {f.name for f in dataclasses.fields(cls)}
    for name in params:
        if name not in names:
            raise ConfigError(f"--{name}: not a parameter of {getattr(cls, 'sim_name', cls.__name__)!r}; "
                              f"allowed: {', '.join(sorted(names))}")
    cfg = cls(**{k: coerce(cls, k, v) for k, v in params.items()})
    validate(cfg)
    return cfg


def to_dict(cfg) -> dict[str, Any]:
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}


def describe(cls) -> list[tuple[str, Any, str, str, str]]:
    """(name, default, units, allowed, doc) for every field: what `--help` prints."""
    return [(f.name, f.default, f.metadata["units"], _allowed(f),
             f.metadata["doc"] + (" [traced]" if f.metadata["traced"] else ""))
            for f in dataclasses.fields(cls)]



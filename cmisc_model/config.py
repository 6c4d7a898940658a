"""params.yaml -> typed dataclasses.

Hyperparameters live in two places only: ``params.yaml`` (what DVC tracks) and
the dataclass defaults next to the code that uses them. ``load_section`` fills
a dataclass from one section and rejects unknown keys and wrong types with a
one-line error naming the key (``sample.size: ...``).
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

DEFAULT_PARAMS = Path("params.yaml")


class ParamsError(ValueError):
    """A params value is unknown or of the wrong type; the message names the key."""


def load_params(path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: no such params file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML ({e})") from e
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: the top level must be a mapping of sections")
    return data


def _check_type(key: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_type(key, value, a)
            except ParamsError:
                pass
        raise ParamsError(f"{key}: {value!r} is not of type {hint}")
    if origin is typing.Literal:
        if value not in typing.get_args(hint):
            raise ParamsError(f"{key}: {value!r} is not one of {list(typing.get_args(hint))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"{key}: {value!r} is not a list")
        (inner, *_) = typing.get_args(hint) or (Any,)
        return origin(_check_type(f"{key}[{i}]", v, inner) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ParamsError(f"{key}: {value!r} is not a mapping")
        return dict(value)
    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, key)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool):
        raise ParamsError(f"{key}: {value!r} is not an integer")
    if isinstance(hint, type) and not isinstance(value, hint):
        raise ParamsError(f"{key}: {value!r} is not of type {hint.__name__}")
    return value


def from_mapping(cls: type[T], data: Any, name: str) -> T:
    """Build dataclass ``cls`` from ``data``; ``name`` prefixes keys in errors."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParamsError(f"{name}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ParamsError(f"{name}.{unknown[0]}: unknown key (known: {', '.join(sorted(fields))})")
    kwargs = {k: _check_type(f"{name}.{k}", v, hints[k]) for k, v in data.items()}
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ParamsError(f"{name}: {e}") from e
    return obj


def load_section(cls: type[T], section: str, path: str | Path = DEFAULT_PARAMS) -> T:
    """``load_section(SampleConfig, "sample")`` -> SampleConfig from params.yaml."""
    params = load_params(path)
    return from_mapping(cls, params.get(section, {}), section)


@dataclasses.dataclass
class BaseConfig:
    """The ``base`` section: things every stage shares."""

    seed: int = 12345
    data_dir: str = "data"
    models_dir: str = "models"
    reports_dir: str = "reports"

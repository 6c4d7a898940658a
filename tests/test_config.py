"""params.yaml -> dataclasses: errors name the key."""

from __future__ import annotations

import dataclasses
from typing import Literal

import pytest

from cmisc_model.config import BaseConfig, ParamsError, from_mapping, load_params, load_section
from tests.conftest import REPO


@dataclasses.dataclass
class Demo:
    size: Literal["tiny", "default"] = "tiny"
    lr: float = 0.1
    steps: int = 3
    dims: list[int] = dataclasses.field(default_factory=lambda: [1, 2])


def test_defaults_and_values():
    d = from_mapping(Demo, {"lr": 1, "dims": [3]}, "demo")
    assert d == Demo(lr=1.0, dims=[3])


@pytest.mark.parametrize(
    "data,msg",
    [
        ({"size": "huge"}, r"demo\.size: 'huge' is not one of \['tiny', 'default'\]"),
        ({"lr": "fast"}, r"demo\.lr: 'fast' is not of type"),
        ({"steps": 1.5}, r"demo\.steps: 1\.5 is not of type int"),
        ({"steps": True}, r"demo\.steps: True is not an integer"),
        ({"dims": [1, "x"]}, r"demo\.dims\[1\]"),
        ({"colour": 1}, r"demo\.colour: unknown key"),
    ],
)
def test_errors_name_the_key(data, msg):
    with pytest.raises(ParamsError, match=msg):
        from_mapping(Demo, data, "demo")


def test_repo_params_base_matches_dataclass_defaults():
    params = load_params(REPO / "params.yaml")
    assert load_section(BaseConfig, "base", REPO / "params.yaml") == BaseConfig(**params["base"])
    assert BaseConfig(**params["base"]) == BaseConfig()


def test_bad_yaml_names_file(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("base: [unclosed\n")
    with pytest.raises(ParamsError, match="params.yaml: not valid YAML"):
        load_params(p)

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from pydantic import Field

from matforge.core.config import (
    JobConfig,
    StrictModel,
    apply_overrides,
    dump_config,
    load_config,
    parse_override,
)
from matforge.core.errors import ConfigError


class Optimizer(StrictModel):
    learning_rate: float = Field(gt=0)
    steps: int = Field(100, ge=1)


class DesignConfig(JobConfig):
    elements: list[str]
    optimizer: Optimizer
    temperatures: list[float] = Field(default_factory=lambda: [1000.0])


GOOD = """\
name: cantor
seed: 7
elements: [Co, Cr, Fe, Mn, Ni]
optimizer:
  learning_rate: 0.01
  steps: 50
"""


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_loads_valid_config(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), DesignConfig)
    assert config.name == "cantor"
    assert config.seed == 7
    assert config.optimizer.learning_rate == 0.01
    assert config.runs_dir == Path("runs")


def test_invalid_value_names_file_line_and_field_path(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("learning_rate: 0.01", "learning_rate: -0.5"))
    with pytest.raises(ConfigError) as info:
        load_config(path, DesignConfig)
    message = str(info.value)
    assert f"{path}, line 5, field 'optimizer.learning_rate'" in message
    assert "greater than 0" in message
    assert "(got -0.5)" in message


def test_unknown_field_suggests_the_right_name(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("optimizer:", "optimiser:"))
    with pytest.raises(ConfigError) as info:
        load_config(path, DesignConfig)
    message = str(info.value)
    assert "line 4, field 'optimiser': unknown field 'optimiser' (did you mean 'optimizer'?)" in (
        message
    )
    assert "missing required field" in message  # the real 'optimizer' is now absent
    assert message.startswith(f"2 errors in {path}")


def test_unknown_nested_field_lists_expected_fields(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "  momentum: 0.9\n")
    with pytest.raises(
        ConfigError,
        match=r"line 7, field 'optimizer.momentum': unknown field "
        r"'momentum'; expected one of: learning_rate, steps",
    ):
        load_config(path, DesignConfig)


def test_missing_field_points_at_its_parent(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("  learning_rate: 0.01\n", ""))
    with pytest.raises(ConfigError, match=r"line 4, field 'optimizer.learning_rate': missing"):
        load_config(path, DesignConfig)


def test_list_item_error_has_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "temperatures:\n  - 900\n  - hot\n")
    with pytest.raises(ConfigError, match=r"line 9, field 'temperatures.1'.*'hot'"):
        load_config(path, DesignConfig)


def test_malformed_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "name: cantor\noptimizer: [unclosed\nseed: 3\n")
    with pytest.raises(ConfigError, match=rf"{path}, line \d+, column \d+: invalid YAML"):
        load_config(path, DesignConfig)


def test_duplicate_keys_are_errors(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "seed: 8\n")
    with pytest.raises(ConfigError, match=r"line 7: duplicate key 'seed' \(first given on line 2"):
        load_config(path, DesignConfig)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected a mapping of settings"):
        load_config(write(tmp_path, "- a\n- b\n"), DesignConfig)


def test_empty_file_reports_missing_fields(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="field 'elements': missing required field"):
        load_config(write(tmp_path, ""), DesignConfig)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml", DesignConfig)
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path, DesignConfig)


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path, DesignConfig)


def test_overrides_apply_with_yaml_types(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, GOOD),
        DesignConfig,
        ["optimizer.steps=200", "elements.1=Al", "seed=11", "temperatures=[800, 900]"],
    )
    assert config.optimizer.steps == 200
    assert config.elements[1] == "Al"
    assert config.seed == 11
    assert config.temperatures == [800.0, 900.0]


def test_bad_override_value_is_blamed_on_the_override(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"override 'optimizer.steps=0', field "
        r"'optimizer.steps': .*greater than or equal to 1",
    ):
        load_config(write(tmp_path, GOOD), DesignConfig, ["optimizer.steps=0"])


@pytest.mark.parametrize("text", ["steps", "=3", "a..b=1", ".a=1"])
def test_malformed_overrides(text: str) -> None:
    with pytest.raises(ConfigError, match=re.escape("must look like 'field.path=value'")):
        parse_override(text)


def test_override_cannot_index_a_scalar() -> None:
    with pytest.raises(ConfigError, match=re.escape("cannot set 'seed.3'")):
        apply_overrides({"seed": [1, 2]}, ["seed.3=1"])


def test_override_creates_nested_mappings_and_does_not_mutate_input() -> None:
    data = {"a": 1}
    result = apply_overrides(data, ["b.c.d=x"])
    assert result == {"a": 1, "b": {"c": {"d": "x"}}}
    assert data == {"a": 1}


def test_job_config_validates_name_and_seed(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    with pytest.raises(ConfigError, match="field 'name'"):
        load_config(path, DesignConfig, ["name=../escape"])
    with pytest.raises(ConfigError, match="field 'seed'"):
        load_config(path, DesignConfig, ["seed=-1"])


def test_dump_round_trip(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), DesignConfig, ["optimizer.steps=3"])
    again = load_config(write(tmp_path, dump_config(config), "resolved.yaml"), DesignConfig)
    assert again == config

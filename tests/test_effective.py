"""The effective configuration loads back to the same model, for every file we ship or test with."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from environments.effective import effective_toml
from environments.loader import environment_files, load
from environments.schema import Environment

FILES = [*environment_files(), Path(__file__).parent / "variants" / "variant.toml"]


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_effective_toml_round_trips(path):
    environment = load(path)
    text = effective_toml(environment, "header\nsecond line")
    assert text.startswith("# header\n# second line\n")
    assert Environment.model_validate(tomllib.loads(text)) == environment


def test_effective_toml_fills_in_defaults_and_marks_unset_optionals():
    text = effective_toml(load(environment_files()[0]))
    assert "[control_plane.etcd]" in text and 'image = "quay.io/coreos/etcd:v3.5.21"' in text
    assert "# max_model_len: not set" in text


def test_facts_round_trip_too():
    environment = Environment.model_validate(
        {
            "name": "facts",
            "region": "us-east-1",
            "mode": "aggregated",
            "model": {
                "name": "example/oss",
                "facts": {"parameters": 20_914_757_184, "dtype": "mxfp4", "weights_gib": 12.8, "layers": 24,
                          "attention_heads": 64, "kv_heads": 8, "head_dim": 64, "max_context": 131072},
            },
            "decode": {"cpu": 6144, "memory": 49152},
        }
    )  # fmt: skip
    assert Environment.model_validate(tomllib.loads(effective_toml(environment))) == environment

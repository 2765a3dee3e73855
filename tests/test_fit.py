"""Will it fit: a good and a bad case for every check, on models built in memory (fast).

tests/test_bad_input.py runs the bad cases through main.py as users meet them (exit 2,
one line, nothing written)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from environments import fit
from environments.catalog import AL2_GPU_AMI, IMAGE_CUDA
from environments.loader import ConfigError, load
from environments.models import MODEL_CATALOG
from environments.schema import Environment

TOKEN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:hf-token-AbCdEf"
BASE: dict[str, Any] = {
    "name": "fit",
    "region": "us-east-1",
    "mode": "aggregated",
    "gpu_fleet": {"instance_type": "g6e.2xlarge", "min_instances": 0, "max_instances": 2},
    "model": {"name": "Qwen/Qwen3-0.6B", "tensor_parallel_size": 1},
    "decode": {"count": 1, "min_count": 1, "max_count": 2, "cpu": 6144, "memory": 49152, "gpus": 1},
}
# The README's worked example: Llama 3.1 70B on g6e.12xlarge (4 x L40S), tensor parallel 4.
SEVENTY_B: dict[str, Any] = {
    **BASE,
    "gpu_fleet": {"instance_type": "g6e.12xlarge", "min_instances": 0, "max_instances": 2, "root_volume_gib": 250},
    "model": {
        "name": "meta-llama/Llama-3.1-70B-Instruct",
        "tensor_parallel_size": 4,
        "max_model_len": 65536,
        "hf_token_secret_arn": TOKEN,
    },
    "decode": {"count": 1, "min_count": 1, "max_count": 2, "cpu": 40960, "memory": 327680, "gpus": 4},
}


def build(base: dict[str, Any], **changes: dict[str, Any]) -> Environment:
    document = copy.deepcopy(base)
    for section, values in changes.items():
        document[section] = {**document.get(section, {}), **values}
    return Environment.model_validate(document)


def problems(base: dict[str, Any], **changes: dict[str, Any]) -> list[str]:
    """The located problems one environment has, as `path: message` lines."""
    try:
        build(base, **changes)
    except ValidationError as error:
        return [
            f"{path}: {message}"
            for item in error.errors()
            if item["type"] == "config"
            for path, message in item["ctx"]["problems"]
        ]
    return []


def paths(lines: list[str]) -> list[str]:
    return [line.split(": ", 1)[0] for line in lines]


# --- memory ------------------------------------------------------------------------------


def test_the_worked_example_fits_at_65536_tokens():
    assert problems(SEVENTY_B) == []


def test_the_worked_example_at_the_models_full_context_says_the_longest_that_fits():
    (line,) = problems(SEVENTY_B, model={"max_model_len": 131072})
    assert line.startswith("model.max_model_len: does not fit")
    assert "32.9 GiB of weights per GPU" in line and "10.0 GiB of KV cache for one 131072-token" in line
    assert "max_model_len <= 82944" in line
    # The number it names does fit, and one step more does not.
    assert problems(SEVENTY_B, model={"max_model_len": 82944}) == []
    assert paths(problems(SEVENTY_B, model={"max_model_len": 82944 + 1024})) == ["model.max_model_len"]


def test_weights_that_do_not_fit_one_gpu_point_at_a_larger_tensor_parallel_size():
    (line,) = problems(SEVENTY_B, model={"tensor_parallel_size": 1, "max_model_len": 65536}, decode={"gpus": 1})
    assert line.startswith("model.tensor_parallel_size: does not fit")
    assert "131.4 GiB of weights per GPU at tensor_parallel_size 1" in line
    assert "tensor_parallel_size 4 (gpus = 4 per worker)" in line


def test_gpu_memory_utilization_comes_from_the_vllm_arguments():
    tight = {"max_model_len": 90112}
    assert paths(problems(SEVENTY_B, model=tight)) == ["model.max_model_len"]
    assert problems(SEVENTY_B, model={**tight, "extra_vllm_args": ["--gpu-memory-utilization", "0.95"]}) == []
    assert problems(SEVENTY_B, model={**tight, "extra_vllm_args": ["--gpu-memory-utilization=0.95"]}) == []


def test_an_fp8_kv_cache_halves_the_kv_cache():
    assert problems(SEVENTY_B, model={"max_model_len": 131072, "extra_vllm_args": ["--kv-cache-dtype", "fp8"]}) == []


def test_kv_cache_is_per_gpu_and_replicated_beyond_the_kv_heads():
    qwen_moe = MODEL_CATALOG["Qwen/Qwen3-30B-A3B"]  # 4 KV heads
    assert fit.kv_heads_per_gpu(qwen_moe, 2) == 2
    assert fit.kv_heads_per_gpu(qwen_moe, 8) == 1  # 8 ranks share 4 heads: each keeps one
    per_token = fit.kv_bytes_per_token(qwen_moe, 1, [])
    assert per_token == 2 * 48 * 4 * 128 * 2


# --- tensor parallel -----------------------------------------------------------------------


@pytest.mark.parametrize("tp", [1, 2, 4, 8])
def test_tensor_parallel_sizes_that_split_qwen3_32b_evenly(tp):
    assert fit.valid_tensor_parallel(MODEL_CATALOG["Qwen/Qwen3-32B"], tp)


def test_tensor_parallel_3_is_refused_with_the_sizes_that_work():
    gpus = {"gpus": 3, "cpu": 40960, "memory": 327680}
    fleet = {"instance_type": "g6e.12xlarge"}
    lines = problems(BASE, gpu_fleet=fleet, model={"name": "Qwen/Qwen3-32B", "tensor_parallel_size": 3}, decode=gpus)
    assert lines == [
        "model.tensor_parallel_size: 3 does not split Qwen/Qwen3-32B's 64 attention heads and 8 KV heads evenly "
        "(vLLM refuses to start); allowed: 1, 2, 4, 8"
    ]


def test_kv_heads_may_be_replicated_but_not_split_unevenly():
    qwen_moe = MODEL_CATALOG["Qwen/Qwen3-30B-A3B"]  # 32 heads, 4 KV heads
    assert fit.valid_tensor_parallel(qwen_moe, 8)  # 8 ranks, each KV head on 2 of them
    distill = MODEL_CATALOG["deepseek-ai/DeepSeek-R1-Distill-Qwen-32B"]  # 40 heads, 8 KV heads
    assert not fit.valid_tensor_parallel(distill, 5)  # 40 / 5 works, 8 KV heads over 5 ranks do not


# --- root volume -------------------------------------------------------------------------


def test_root_volume_holds_two_images_the_weights_and_headroom():
    assert fit.root_volume_needed_gib(MODEL_CATALOG["meta-llama/Llama-3.1-70B-Instruct"]) == 213
    (line,) = problems(SEVENTY_B, gpu_fleet={"root_volume_gib": 212})
    assert line.startswith("gpu_fleet.root_volume_gib: 212 GiB is too small") and line.endswith("needs at least 213")
    assert problems(SEVENTY_B, gpu_fleet={"root_volume_gib": 213}) == []


def test_throughput_needs_iops_at_a_quarter_mib_per_iops():
    (line,) = problems(BASE, gpu_fleet={"root_volume_throughput_mibps": 1000, "root_volume_iops": 3999})
    assert line.startswith("gpu_fleet.root_volume_throughput_mibps: 1000 MiB/s needs at least 4000 IOPS")
    assert problems(BASE, gpu_fleet={"root_volume_throughput_mibps": 1000, "root_volume_iops": 4000}) == []


def test_gp3_limits_are_field_bounds():
    for fleet in ({"root_volume_throughput_mibps": 124}, {"root_volume_throughput_mibps": 1001}):
        with pytest.raises(ValidationError):
            build(BASE, gpu_fleet=fleet)
    for fleet in ({"root_volume_iops": 2999}, {"root_volume_iops": 16001}):
        with pytest.raises(ValidationError):
            build(BASE, gpu_fleet=fleet)


# --- gated ---------------------------------------------------------------------------------


def test_a_gated_model_needs_a_token_and_an_open_one_does_not():
    llama = {"name": "meta-llama/Llama-3.1-8B-Instruct"}
    assert paths(problems(BASE, model=llama)) == ["model.hf_token_secret_arn"]
    assert problems(BASE, model={**llama, "hf_token_secret_arn": TOKEN}) == []
    assert problems(BASE, model={"name": "deepseek-ai/DeepSeek-R1-Distill-Llama-8B"}) == []


# --- image vs driver -----------------------------------------------------------------------


def test_every_known_image_runs_on_the_recommended_ami():
    for tag in IMAGE_CUDA:
        assert fit.image_driver_problems(tag, fit.current_ami()) == []


def test_an_image_needing_a_newer_driver_than_the_ami_has_is_refused():
    (problem,) = fit.image_driver_problems("1.2.1", AL2_GPU_AMI)  # driver 550 < 575
    assert problem[0] == "image.tag"
    assert "needs an NVIDIA driver 575 or later" in problem[1] and "550.163.01" in problem[1]


def test_an_image_outside_the_table_is_a_warning_not_an_error():
    assert fit.image_warnings("1.2.1") == []
    ((path, message),) = fit.image_warnings("1.3.0")
    assert path == "image.tag" and message.startswith("warning:")
    assert problems(BASE, image={"tag": "1.3.0"}) == []


# --- cold start ----------------------------------------------------------------------------


def test_cold_start_phases_follow_the_stated_assumptions():
    qwen = MODEL_CATALOG["Qwen/Qwen3-14B"]
    env = build(BASE, model={"name": "Qwen/Qwen3-14B"})
    estimate = fit.cold_start(env, qwen)
    weights_mib = qwen.weight_bytes / 2**20
    # g6e.2xlarge's EBS carries 625 MB/s (596 MiB/s): the 500 MiB/s volume is the limit.
    assert estimate.disk_mibps == 500
    assert estimate.download == pytest.approx(weights_mib / fit.WEIGHTS_DOWNLOAD_MIBPS)
    assert estimate.load == pytest.approx(weights_mib / 500)
    assert estimate.pull == pytest.approx(fit.IMAGE_COMPRESSED_GIB * 1024 / fit.IMAGE_PULL_MIBPS)
    slower = build(BASE, gpu_fleet={"root_volume_throughput_mibps": 125}, model={"name": "Qwen/Qwen3-14B"})
    assert fit.cold_start(slower, qwen).load == pytest.approx(weights_mib / 125)


def test_the_instances_ebs_limit_caps_the_volume():
    env = build(BASE, gpu_fleet={"instance_type": "g6e.xlarge", "root_volume_throughput_mibps": 1000,
                                 "root_volume_iops": 4000}, decode={"cpu": 3072, "memory": 24576})  # fmt: skip
    assert fit.disk_mibps(env) == pytest.approx(625 * 1_000_000 / 2**20)  # 625 MB/s


def test_health_check_grows_with_the_estimate_and_stays_within_ecs():
    small = fit.health_check(fit.ColdStart(0, 10, 10, 120, 500))
    assert small == fit.HealthCheck(300, 30, 10)
    longer = fit.health_check(fit.ColdStart(0, 300, 200, 120, 500))  # 620 s x 1.25 = 775
    assert longer is not None and longer.budget >= 775 and longer.interval == 50
    assert fit.health_check(fit.ColdStart(0, 2000, 700, 120, 125)) is None  # 2820 s x 1.25 > 3300


def test_a_start_beyond_any_health_check_is_refused_and_faster_disks_fix_it():
    assert paths(problems(SEVENTY_B, gpu_fleet={"root_volume_throughput_mibps": 125})) == []  # 70B: 47 min, fits
    big = {"parameters": 405_853_388_800, "dtype": "float8", "layers": 126, "attention_heads": 128, "kv_heads": 8,
           "head_dim": 128, "max_context": 131072, "gated": False}  # fmt: skip
    huge = {
        **SEVENTY_B,
        "gpu_fleet": {"instance_type": "p5.48xlarge", "max_instances": 2, "root_volume_gib": 600},
        "model": {"name": "example/405b-fp8", "tensor_parallel_size": 8, "max_model_len": 32768, "facts": big},
        "decode": {"count": 1, "min_count": 1, "max_count": 2, "cpu": 98304, "memory": 1048576, "gpus": 8},
    }
    assert paths(problems(huge, gpu_fleet={"root_volume_throughput_mibps": 125})) == [
        "gpu_fleet.root_volume_throughput_mibps"
    ]
    assert problems(huge, gpu_fleet={"root_volume_throughput_mibps": 1000, "root_volume_iops": 4000}) == []


# --- models outside the catalog -------------------------------------------------------------


def test_an_unknown_model_needs_facts_and_says_what_is_close():
    (line,) = problems(BASE, model={"name": "Qwen/Qwen3-9B"})
    assert line.startswith(
        'model.name: "Qwen/Qwen3-9B" is not in environments/models.py (did you mean Qwen/Qwen3-8B or Qwen/Qwen3-4B?)'
    )
    assert "model.config_json" in line and "[model.facts]" in line
    facts = {"parameters": 9_000_000_000, "dtype": "bfloat16", "layers": 36, "attention_heads": 32, "kv_heads": 8,
             "head_dim": 128, "max_context": 32768}  # fmt: skip
    assert problems(BASE, model={"name": "Qwen/Qwen3-9B", "facts": facts}) == []


def write_environment(directory: Path, config: dict[str, Any], facts: str = "") -> Path:
    (directory / "config.json").write_text(json.dumps(config))
    text = (
        'name = "custom"\nregion = "us-east-1"\nmode = "aggregated"\n\n[model]\nname = "example-org/custom-8b"\n'
        f'config_json = "config.json"\n{facts}\n[decode]\ncpu = 6144\nmemory = 49152\n'
    )
    path = directory / "custom.toml"
    path.write_text(text)
    return path


LLAMA_8B_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "max_position_embeddings": 131072,
    "vocab_size": 128256,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}


def test_a_config_json_gives_the_facts(tmp_path):
    env = load(write_environment(tmp_path, LLAMA_8B_CONFIG), "custom.toml")
    facts = env.model.model_facts
    assert facts is not None
    assert facts[:8] == MODEL_CATALOG["meta-llama/Llama-3.1-8B-Instruct"][:7] + (False,)


def test_a_config_json_that_does_not_say_everything_names_what_to_add(tmp_path):
    config = {**LLAMA_8B_CONFIG, "architectures": ["SomethingNewForCausalLM"]}
    with pytest.raises(ConfigError) as raised:
        load(write_environment(tmp_path, config), "custom.toml")
    (line,) = raised.value.lines
    assert line.startswith("custom.toml: model.config_json: config.json does not say parameters")
    assert line.endswith("give them in [model.facts]")
    fixed = load(write_environment(tmp_path, config, "[model.facts]\nparameters = 8030261248\n"), "custom.toml")
    assert fixed.model.model_facts is not None and fixed.model.model_facts.parameters == 8_030_261_248


def test_a_config_json_that_is_not_json_is_one_line(tmp_path):
    path = write_environment(tmp_path, LLAMA_8B_CONFIG)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError) as raised:
        load(path, "custom.toml")
    assert raised.value.lines[0].startswith("custom.toml: model.config_json: config.json is not JSON (line 1")


def test_equally_close_values_are_all_offered():
    def region_message(region: str) -> str:
        with pytest.raises(ValidationError) as raised:
            build({**BASE, "region": region})
        (item,) = raised.value.errors()
        return item["msg"]

    assert "(did you mean us-west-1 or us-east-1?)" in region_message("us-est-1")
    assert "(did you mean eu-west-1?)" in region_message("eu-wset-1")

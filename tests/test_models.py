"""The model catalog: counts that reproduce published totals, and entries that vLLM could load."""

from __future__ import annotations

import pytest

from environments.fit import valid_tensor_parallel
from environments.models import GPT_OSS_20B_BYTES, GPT_OSS_120B_BYTES, MODEL_CATALOG, facts_from_config, parameter_count

# Shapes from each model's config.json (sources in environments/models.py) and the exact
# safetensors parameter totals the Hugging Face API reports for them.
QWEN3_32B = {
    "architectures": ["Qwen3ForCausalLM"], "hidden_size": 5120, "intermediate_size": 25600, "num_hidden_layers": 64,
    "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151936,
    "tie_word_embeddings": False, "max_position_embeddings": 40960, "torch_dtype": "bfloat16",
}  # fmt: skip
LLAMA_31_8B = {
    "architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256, "tie_word_embeddings": False,
}  # fmt: skip
QWEN25_32B = {
    "architectures": ["Qwen2ForCausalLM"], "hidden_size": 5120, "intermediate_size": 27648, "num_hidden_layers": 64,
    "num_attention_heads": 40, "num_key_value_heads": 8, "vocab_size": 152064, "tie_word_embeddings": False,
}  # fmt: skip
GPT_OSS_20B = {
    "architectures": ["GptOssForCausalLM"], "hidden_size": 2880, "intermediate_size": 2880, "num_hidden_layers": 24,
    "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 64, "vocab_size": 201088,
    "num_local_experts": 32, "tie_word_embeddings": False,
}  # fmt: skip


@pytest.mark.parametrize(
    ("config", "published"),
    [
        (QWEN3_32B, 32_762_123_264),  # Qwen/Qwen3-32B
        (LLAMA_31_8B, 8_030_261_248),  # meta-llama/Llama-3.1-8B-Instruct, DeepSeek-R1-Distill-Llama-8B
        (QWEN25_32B, 32_763_876_352),  # deepseek-ai/DeepSeek-R1-Distill-Qwen-32B
    ],
)
def test_parameter_count_matches_the_hugging_face_totals(config, published):
    assert parameter_count(config) == published


def test_gpt_oss_bf16_part_matches_the_hugging_face_total():
    experts = 32 * 24 * (2880 * 5760 + 2880 * 2880)  # expert weights, stored as MXFP4
    assert parameter_count(GPT_OSS_20B) - experts == 1_804_459_584  # HF: BF16 parameters
    assert round(GPT_OSS_20B_BYTES / 2**30, 1) == 12.8
    assert round(GPT_OSS_120B_BYTES / 2**30, 1) == 60.8


def test_the_catalog_counts_what_its_config_shapes_give():
    assert MODEL_CATALOG["Qwen/Qwen3-32B"].parameters == parameter_count(QWEN3_32B)
    assert MODEL_CATALOG["meta-llama/Llama-3.1-8B-Instruct"].parameters == parameter_count(LLAMA_31_8B)
    assert MODEL_CATALOG["openai/gpt-oss-20b"].parameters == parameter_count(GPT_OSS_20B)


@pytest.mark.parametrize("name", sorted(MODEL_CATALOG))
def test_every_entry_is_loadable_by_vllm_somewhere_and_names_its_source(name):
    facts = MODEL_CATALOG[name]
    assert facts.attention_heads % facts.kv_heads == 0
    assert valid_tensor_parallel(facts, 1) and valid_tensor_parallel(facts, 8)
    assert facts.source and facts.weight_bytes > facts.parameters // 2
    assert "/" in name


def test_the_issue_asks_for_these_families():
    names = set(MODEL_CATALOG)
    for size in ("0.6B", "1.7B", "4B", "8B", "14B", "32B", "30B-A3B"):
        assert f"Qwen/Qwen3-{size}" in names
    assert {
        "meta-llama/Llama-3.1-8B-Instruct",
        "meta-llama/Llama-3.1-70B-Instruct",
        "meta-llama/Llama-3.3-70B-Instruct",
    } <= names
    assert any(name.startswith("mistralai/Mixtral") for name in names)
    assert sum(name.startswith("deepseek-ai/DeepSeek-R1-Distill") for name in names) >= 2
    assert {"openai/gpt-oss-20b", "openai/gpt-oss-120b"} <= names


def test_facts_from_a_config_json():
    facts = facts_from_config(QWEN3_32B)
    assert facts == {
        "layers": 64, "attention_heads": 64, "kv_heads": 8, "head_dim": 128, "max_context": 40960,
        "dtype": "bfloat16", "parameters": 32_762_123_264,
    }  # fmt: skip
    # A quantized checkpoint: neither dtype nor parameters can be read off it.
    quantized = facts_from_config({**QWEN3_32B, "quantization_config": {"quant_method": "fp8"}})
    assert "dtype" not in quantized and "parameters" not in quantized
    # No head_dim: hidden_size / heads; no num_key_value_heads: every head has its own.
    llama = facts_from_config({**LLAMA_31_8B, "num_key_value_heads": None, "max_position_embeddings": 8192})
    assert llama["head_dim"] == 128 and llama["kv_heads"] == 32

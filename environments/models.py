"""Facts about the models people serve with Dynamo + vLLM, each from the model's config.json.

A model outside this catalog gives the same facts in ``[model.facts]`` or names its
config.json with ``model.config_json`` (see ``facts_from_config``).

Catalog taken 2026-11-26. Where each number comes from:

- CONFIG (layers, attention heads, KV heads, head dim, max context, dtype): the model's
  Hugging Face config.json, read from copies that a package or repository ships verbatim:
    AICONF   aiconfigurator-core 0.12.0 on PyPI (NVIDIA's, for Dynamo),
             aiconfigurator_core/model_configs/<org>--<name>_config.json
    AICONF_REPO  ai-dynamo/aiconfigurator, src/aiconfigurator/model_configs/<org>--<name>_config.json
    LLMPROF  citsjtu2020/LLM-Prof, sglang/Model_Config.md (config.json files quoted whole)
  max context is max_position_embeddings: vLLM's default max_model_len.
- PARAMETERS: counted from the config's shapes by ``parameter_count`` (below). The count
  matches the Hugging Face API's safetensors parameter total exactly for Qwen3-32B,
  Llama-3.1-8B-Instruct, DeepSeek-R1-Distill-Qwen-32B and -Llama-8B, and the bf16 part of
  both gpt-oss models (HFAPI below), and the model cards' rounded totals for the rest
  (tests/test_models.py holds the exact ones).
- GATED: the Hugging Face API's "gated" field where HFAPI has it.
    HFAPI    the Hugging Face model API (/api/models/<id>) as captured 2025-09 in
             daniel-p-green/alain-ai-learning-platform, out/research-<model>/sources/huggingface/model.json
- Anything not verified this way says so in the entry's ``unverified``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

# Bytes per parameter (and per KV-cache element with vLLM's kv_cache_dtype "auto") by dtype.
DTYPE_BYTES: dict[str, int] = {"float32": 4, "bfloat16": 2, "float16": 2, "float8": 1}


class ModelFacts(NamedTuple):
    parameters: int
    dtype: str  # of the checkpoint: a key of DTYPE_BYTES, or "mxfp4" (then weights_bytes says the size)
    layers: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    max_context: int
    gated: bool
    source: str
    weights_bytes: int | None = None  # the checkpoint's size where it is not parameters x dtype
    unverified: str = ""

    @property
    def weight_bytes(self) -> int:
        return self.weights_bytes if self.weights_bytes is not None else self.parameters * DTYPE_BYTES[self.dtype]

    @property
    def kv_bytes(self) -> int:
        """Bytes per KV-cache element with vLLM's kv_cache_dtype "auto": the activation dtype,
        16-bit for every quantized checkpoint here (fp8, mxfp4) too."""
        return 4 if self.dtype == "float32" else 2


AICONF = "aiconfigurator-core 0.12.0 (PyPI) model_configs/{}_config.json"
AICONF_REPO = "ai-dynamo/aiconfigurator src/aiconfigurator/model_configs/{}_config.json"
LLMPROF = "citsjtu2020/LLM-Prof sglang/Model_Config.md ({})"
HFAPI = "; parameters and gated: Hugging Face API via daniel-p-green/alain-ai-learning-platform (research-{})"
NOT_GATED_QWEN = "gated: Qwen3 repositories are Apache-2.0 and ungated (HFAPI shows it for 0.6B and 32B only)"
GATED_META = "gated: assumed, as for Llama-3.1-8B-Instruct (HFAPI: manual); not looked up for this repository"

# gpt-oss stores its MoE expert weights in MXFP4 (4-bit values + one 8-bit scale per 32:
# 4.25 bits) and everything else in bf16 (config.json quantization_config,
# modules_to_not_convert). Per expert and layer: (2880 x 5760 + 2880 x 2880) weights in
# 13,219,200 bytes of blocks and scales. Checkpoint = experts x layers x 13,219,200 +
# 2 x (the rest); "the rest" equals HFAPI's BF16 count exactly for both models.
GPT_OSS_20B_BYTES = 32 * 24 * 13_219_200 + 2 * 1_804_459_584  # 12.8 GiB
GPT_OSS_120B_BYTES = 128 * 36 * 13_219_200 + 2 * 2_167_371_072  # 60.8 GiB

MODEL_CATALOG: dict[str, ModelFacts] = {
    # Qwen3: Apache-2.0. 0.6B, 1.7B and 4B tie their embeddings (counted once: what vLLM
    # loads; HFAPI counts 0.6B's tied matrix twice, 751,632,384, as the checkpoint stores it).
    "Qwen/Qwen3-0.6B": ModelFacts(
        596_049_920,
        "bfloat16",
        28,
        16,
        8,
        128,
        40960,
        False,
        AICONF.format("Qwen--Qwen3-0.6B") + HFAPI.format("qwen-qwen3-0-6b"),
    ),
    "Qwen/Qwen3-1.7B": ModelFacts(
        1_720_574_976,
        "bfloat16",
        28,
        16,
        8,
        128,
        40960,
        False,
        AICONF.format("Qwen--Qwen3-1.7B"),
        unverified=NOT_GATED_QWEN,
    ),
    "Qwen/Qwen3-4B": ModelFacts(
        4_022_468_096, "bfloat16", 36, 32, 8, 128, 40960, False, LLMPROF.format("Qwen3-4B"), unverified=NOT_GATED_QWEN
    ),
    "Qwen/Qwen3-8B": ModelFacts(
        8_190_735_360,
        "bfloat16",
        36,
        32,
        8,
        128,
        40960,
        False,
        AICONF.format("Qwen--Qwen3-8B"),
        unverified=NOT_GATED_QWEN,
    ),
    "Qwen/Qwen3-14B": ModelFacts(
        14_768_307_200, "bfloat16", 40, 40, 8, 128, 40960, False, LLMPROF.format("Qwen3-14B"), unverified=NOT_GATED_QWEN
    ),
    "Qwen/Qwen3-32B": ModelFacts(
        32_762_123_264,
        "bfloat16",
        64,
        64,
        8,
        128,
        40960,
        False,
        AICONF.format("Qwen--Qwen3-32B") + HFAPI.format("qwen-qwen3-32b"),
    ),
    "Qwen/Qwen3-30B-A3B": ModelFacts(
        30_532_122_624,
        "bfloat16",
        48,
        32,
        4,
        128,
        40960,
        False,
        AICONF.format("Qwen--Qwen3-30B-A3B"),
        unverified=NOT_GATED_QWEN,
    ),
    # Llama 3.1 / 3.3: the Instruct models have the base models' config (same shapes).
    "meta-llama/Llama-3.1-8B-Instruct": ModelFacts(
        8_030_261_248,
        "bfloat16",
        32,
        32,
        8,
        128,
        131072,
        True,
        AICONF.format("meta-llama--Meta-Llama-3.1-8B") + HFAPI.format("meta-llama-llama-3-1-8b-instruct"),
    ),
    "meta-llama/Llama-3.1-70B-Instruct": ModelFacts(
        70_553_706_496,
        "bfloat16",
        80,
        64,
        8,
        128,
        131072,
        True,
        AICONF.format("meta-llama--Meta-Llama-3.1-70B"),
        unverified=GATED_META,
    ),
    "meta-llama/Llama-3.3-70B-Instruct": ModelFacts(
        70_553_706_496,
        "bfloat16",
        80,
        64,
        8,
        128,
        131072,
        True,
        AICONF_REPO.format("meta-llama--Llama-3.3-70B-Instruct"),
        unverified=GATED_META,
    ),
    # Mistral AI: both repositories ask for contact details before download.
    "mistralai/Mistral-7B-Instruct-v0.3": ModelFacts(
        7_248_023_552,
        "bfloat16",
        32,
        32,
        8,
        128,
        32768,
        True,
        "no copy of its config.json found: shapes of Mistral-7B-v0.3 (q 4096x4096, k/v 1024x4096, mlp 14336) from "
        "a layer table in public code, vocabulary 32768 from its model card",
        unverified="config.json and gated not verified: check both before relying on this entry",
    ),
    "mistralai/Mixtral-8x7B-Instruct-v0.1": ModelFacts(
        46_702_792_704,
        "bfloat16",
        32,
        32,
        8,
        128,
        32768,
        True,
        AICONF.format("mistralai--Mixtral-8x7B-v0.1"),
        unverified="gated: not looked up (Mistral AI's repositories ask for contact details)",
    ),
    # DeepSeek-R1 distills: fine-tunes of Qwen2.5 and Llama 3 (the DeepSeek-R1 README names the
    # base of each); their config.json keeps the base's shapes.
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B": ModelFacts(
        14_770_033_664,
        "bfloat16",
        48,
        40,
        8,
        128,
        131072,
        False,
        LLMPROF.format("Qwen2.5-14B, its base"),
        unverified="config.json of the distill itself and gated not looked up; shapes are its base's",
    ),
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B": ModelFacts(
        32_763_876_352,
        "bfloat16",
        64,
        40,
        8,
        128,
        131072,
        False,
        LLMPROF.format("Qwen2.5-32B, its base; HFAPI: Qwen2ForCausalLM, 131072 context")
        + HFAPI.format("deepseek-ai-deepseek-r1-distill-qwen-32b"),
    ),
    "deepseek-ai/DeepSeek-R1-Distill-Llama-8B": ModelFacts(
        8_030_261_248,
        "bfloat16",
        32,
        32,
        8,
        128,
        131072,
        False,
        AICONF.format("meta-llama--Meta-Llama-3.1-8B")
        + " (its base)"
        + HFAPI.format("deepseek-ai-deepseek-r1-distill-llama-8b"),
    ),
    "deepseek-ai/DeepSeek-R1-Distill-Llama-70B": ModelFacts(
        70_553_706_496,
        "bfloat16",
        80,
        64,
        8,
        128,
        131072,
        False,
        AICONF_REPO.format("meta-llama--Llama-3.3-70B-Instruct") + " (its base)",
        unverified="config.json of the distill itself and gated not looked up; shapes are its base's",
    ),
    # gpt-oss: MXFP4 experts; half its layers use a 128-token sliding window, which the KV
    # estimate here ignores (it counts every layer at full length, up to 2x too much KV cache).
    "openai/gpt-oss-20b": ModelFacts(
        20_914_757_184,
        "mxfp4",
        24,
        64,
        8,
        64,
        131072,
        False,
        AICONF.format("openai--gpt-oss-20b") + HFAPI.format("openai-gpt-oss-20b"),
        weights_bytes=GPT_OSS_20B_BYTES,
    ),
    "openai/gpt-oss-120b": ModelFacts(
        116_829_156_672,
        "mxfp4",
        36,
        64,
        8,
        64,
        131072,
        False,
        AICONF.format("openai--gpt-oss-120b") + HFAPI.format("openai-gpt-oss-120b"),
        weights_bytes=GPT_OSS_120B_BYTES,
    ),
}

# Architectures whose parameters parameter_count can count from config.json alone.
COUNTABLE_ARCHITECTURES = (
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "Qwen2ForCausalLM",
    "Qwen3ForCausalLM",
    "Qwen3MoeForCausalLM",
    "MixtralForCausalLM",
    "GptOssForCausalLM",
)


def parameter_count(config: dict[str, Any]) -> int:
    """Parameters of a decoder-only transformer of a COUNTABLE_ARCHITECTURES kind, from its config.json.

    Embeddings (twice unless tied), per layer the attention projections (with the q/k/v biases
    of Qwen2 and gpt-oss, Qwen3's q/k norms, gpt-oss's output bias and sinks), the MLP or the
    experts and their router, two norms; one final norm."""
    architecture = config["architectures"][0]
    hidden, layers = config["hidden_size"], config["num_hidden_layers"]
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    head_dim = config.get("head_dim") or hidden // heads
    vocab, intermediate = config["vocab_size"], config["intermediate_size"]
    q, kv = heads * head_dim, kv_heads * head_dim
    attention = hidden * q + 2 * hidden * kv + q * hidden
    if architecture in ("Qwen2ForCausalLM", "GptOssForCausalLM"):
        attention += q + 2 * kv
    if architecture == "GptOssForCausalLM":
        attention += hidden + heads
    if architecture.startswith("Qwen3"):
        attention += 2 * head_dim
    if architecture == "Qwen3MoeForCausalLM":
        experts = config["num_experts"]
        mlp = hidden * experts + experts * 3 * hidden * config["moe_intermediate_size"]
    elif architecture == "MixtralForCausalLM":
        experts = config["num_local_experts"]
        mlp = hidden * experts + experts * 3 * hidden * intermediate
    elif architecture == "GptOssForCausalLM":
        experts = config["num_local_experts"]
        per_expert = hidden * 2 * intermediate + 2 * intermediate + intermediate * hidden + hidden
        mlp = hidden * experts + experts + experts * per_expert
    else:
        mlp = 3 * hidden * intermediate
    embeddings = vocab * hidden * (1 if config.get("tie_word_embeddings", False) else 2)
    return int(embeddings + layers * (attention + mlp + 2 * hidden) + hidden)


# config.json keys -> the facts' names; what a file lacks must come from [model.facts].
CONFIG_KEYS = {
    "layers": "num_hidden_layers",
    "attention_heads": "num_attention_heads",
    "kv_heads": "num_key_value_heads",
    "max_context": "max_position_embeddings",
}
CONFIG_DTYPES = {"bfloat16": "bfloat16", "float16": "float16", "float32": "float32", "float8_e4m3fn": "float8"}


def facts_from_config(config: dict[str, Any]) -> dict[str, Any]:
    """The facts a config.json states (a multimodal model's text_config where it has one).

    Parameters only for COUNTABLE_ARCHITECTURES without quantization_config; dtype only when
    it is one vLLM stores as is. ``gated`` is never in config.json."""
    nested = config.get("text_config")
    text: dict[str, Any] = nested if isinstance(nested, dict) else config
    facts: dict[str, Any] = {}
    for fact, key in CONFIG_KEYS.items():
        if isinstance(text.get(key), int):
            facts[fact] = text[key]
    if "kv_heads" not in facts and "attention_heads" in facts:
        facts["kv_heads"] = facts["attention_heads"]  # no num_key_value_heads: multi-head attention
    head_dim = text.get("head_dim")
    if isinstance(head_dim, int):
        facts["head_dim"] = head_dim
    elif isinstance(text.get("hidden_size"), int) and facts.get("attention_heads"):
        facts["head_dim"] = text["hidden_size"] // facts["attention_heads"]
    dtype = text.get("torch_dtype") or text.get("dtype") or config.get("torch_dtype") or config.get("dtype")
    quantized = "quantization_config" in config or "quantization_config" in text
    if dtype in CONFIG_DTYPES and not quantized:
        facts["dtype"] = CONFIG_DTYPES[dtype]
    architectures = config.get("architectures") or []
    if architectures and architectures[0] in COUNTABLE_ARCHITECTURES and not quantized and text is config:
        try:
            facts["parameters"] = parameter_count(config)
        except (KeyError, TypeError, ZeroDivisionError):
            pass  # a shape is missing: [model.facts] must say how many
    return facts

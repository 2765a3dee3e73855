"""A tiny stand-in for a Hugging Face model, laid out as a hub cache, so that the real
frontend and the mocker find `config.json` and a tokenizer under the configured model id
with HF_HUB_OFFLINE=1. Made with the `tokenizers` package that ai-dynamo installs; run in
the twin's venv: python -m tests.twin.hf_model HF_HOME MODEL_ID."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REVISION = "0" * 40
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def write_model(hf_home: Path, model_id: str) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    repo = hf_home / "hub" / ("models--" + model_id.replace("/", "--"))
    snapshot = repo / "snapshots" / REVISION
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(REVISION)
    # One token per printable character: any prompt tokenizes, any generated id decodes.
    words = ["<unk>", *SPECIAL, "\n", *(chr(code) for code in range(32, 127))]
    vocab = {word: index for index, word in enumerate(words)}
    tokenizer = Tokenizer(models.WordPiece(vocab=vocab, unk_token="<unk>", max_input_chars_per_word=100))
    tokenizer.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tokenizer.decoder = decoders.Fuse()
    tokenizer.add_special_tokens(SPECIAL)
    tokenizer.save(str(snapshot / "tokenizer.json"))
    end = vocab["<|im_end|>"]
    files = {
        "tokenizer_config.json": {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "eos_token": "<|im_end|>",
            "pad_token": "<|endoftext|>",
            "unk_token": "<unk>",
            "model_max_length": 4096,
            "chat_template": CHAT_TEMPLATE,
        },
        "config.json": {
            "architectures": ["Qwen3ForCausalLM"],
            "model_type": "qwen3",
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "intermediate_size": 128,
            "vocab_size": len(vocab),
            "max_position_embeddings": 4096,
            "eos_token_id": end,
            "bos_token_id": vocab["<|endoftext|>"],
            "torch_dtype": "bfloat16",
        },
        "generation_config.json": {"eos_token_id": end},
    }
    for name, content in files.items():
        (snapshot / name).write_text(json.dumps(content, indent=1))
    return snapshot


if __name__ == "__main__":
    print(write_model(Path(sys.argv[1]), sys.argv[2]))

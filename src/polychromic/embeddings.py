"""Sentence embeddings: batched, mean-pooled and normalised, from a local encoder folder.

Used by the evaluation's judge and by the training reward (which encoders exist, and where their
weights are, is `polychromic.encoders`). Embedding = mean of the last hidden states over
non-padding tokens, L2-normalised, exactly as sentence-transformers does for these models, so
cosine similarity = dot product.

Precision: ``float32`` by default. ``bfloat16`` runs the encoder's forward pass under
``torch.autocast`` (the last hidden states, the pooling and the normalisation are float32);
on a CPU that computes bfloat16 natively (AVX512-BF16 or AMX) it is several times faster, and
each embedding stays within a cosine of 1e-3 of its float32 value (tested on MiniLM; the
speed-up and the largest change for the judge are measured by `bench/generation.py`,
docs/benchmarks.md). ``auto`` picks
bfloat16 exactly where it is native on the encoder's device (such a CPU, or a CUDA device with
bf16; the evaluation's judge runs on CPU) and float32
elsewhere, so a slow emulated bfloat16 is never chosen; the precision used is written into the
results.
"""

from __future__ import annotations

import contextlib
import functools
import os

import numpy as np
import torch

from polychromic.encoders import resolve_model_path

PRECISIONS = ("auto", "float32", "bfloat16")


def native_bfloat16(device: str = "cpu") -> bool:
    """Whether `device` computes bfloat16 matrix products natively (not emulated)."""
    if torch.device(device).type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def resolve_precision(precision: str, device: str = "cpu") -> str:
    """`auto` -> bfloat16 where native on `device`, else float32; the others as given."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "bfloat16" if native_bfloat16(device) else "float32"
    return precision


class SentenceEncoder:
    """Batched mean-pooled, normalised sentence embeddings on CPU (or a given device)."""

    def __init__(self, path: str | os.PathLike | None = None, device: str = "cpu",
                 batch_size: int = 64, max_length: int = 128,
                 precision: str = "float32") -> None:
        from transformers import AutoModel, AutoTokenizer

        self.path = resolve_model_path(path)
        self.device = torch.device(device)
        self.precision = resolve_precision(precision, device)
        self.batch_size = batch_size
        self.max_length = max_length
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.model = AutoModel.from_pretrained(self.path).to(self.device).eval()
        self.dim = int(self.model.config.hidden_size)

    @torch.no_grad()
    def encode(self, texts: list[str]) -> np.ndarray:
        """Return an (len(texts), dim) float32 array of unit vectors."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(list(texts[start:start + self.batch_size]), padding=True,
                                   truncation=True, max_length=self.max_length,
                                   return_tensors="pt").to(self.device)
            with self._autocast():
                hidden = self.model(**batch).last_hidden_state.float()
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            chunks.append(pooled.float().cpu().numpy())
        return np.concatenate(chunks, axis=0)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "float32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)


@functools.lru_cache(maxsize=4)
def get_encoder(path: str | None = None, device: str = "cpu",
                precision: str = "float32") -> SentenceEncoder:
    """One encoder per (name or path, device, precision) per process: loading one costs
    seconds."""
    return SentenceEncoder(path, device=device, precision=precision)

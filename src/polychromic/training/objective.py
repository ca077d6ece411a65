"""The seam between the training loop and an objective.

The loop (`polychromic.training.train`) always computes the cross-entropy of the reference reply
(the SFT term) and asks the experiment's objective, once per optimizer step, for a term to add:

    loss = ce_weight * CE(reply | prompt) + extra_loss(model, batch, step)

An objective is a class registered in `polychromic.objectives` with its settings dataclass. It
is built once per run from its settings and an `ObjectiveContext`, and implements `Objective`:

- `extra_loss(model, batch, step)`: `batch` holds every example of the optimizer step, all its
  `grad_accum` micro-batches in order, as one batch, the same on every data-parallel process
  (an objective that splits the work takes its share, `step.parallel.share`), so batch B x
  accumulation G gives it what B*G x 1 does. It returns `None` on steps where it adds nothing,
  else an `ExtraLoss` whose `loss` is already weighted (it carries the gradient), whose `value`
  is that loss summed over data-parallel processes (for the log), whose `logged` terms become
  columns of `training_log.csv` (declared in `log_fields`), and whose `backward_context` is the
  module state its backward needs (the loop back-propagates the CE term, then this term inside
  it);
- `summary()`: numbers for run.json (time per phase, say);
- optionally `ce_weight`, the weight of the CE term (1 when absent; 0 trains by the objective's
  term alone, and the CE is then computed without gradient, for the log).

The random stream: an objective that samples must do so in a stream of its own
(`torch.random.fork_rng`), so that data order and the CE pass's dropout are the baseline's, and a
zero weight reproduces the baseline bitwise.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from polychromic import objectives


@dataclass
class Parallel:
    """This process's place in a data-parallel run (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world: int = 1
    device: str = "cpu"

    @property
    def main(self) -> bool:
        return self.rank == 0

    def share(self, items: list) -> list:
        """This process's share of `items` (every world-th item from its rank)."""
        return items[self.rank::self.world]

    def sum_gradients(self, params: list[torch.Tensor]) -> None:
        if self.world == 1:
            return
        import torch.distributed as dist

        for param in params:
            if param.grad is None:
                param.grad = torch.zeros_like(param)
            dist.all_reduce(param.grad, op=dist.ReduceOp.SUM)

    def global_sum(self, value: float) -> float:
        """`value` summed over the processes."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return float(tensor.item())


def parallel_context() -> Parallel:
    """One process on the default device, or this process of an `accelerate launch` run."""
    from polychromic.models.base import default_device

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Parallel(device=default_device())
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=not torch.cuda.is_available())  # gloo on CPU, nccl on GPU
    return Parallel(accelerator.process_index, accelerator.num_processes, str(accelerator.device))


@dataclass(frozen=True)
class Step:
    """Where the loop is: the optimizer step (1-based), the run's seed, the parallel setup."""

    step: int
    seed: int
    parallel: Parallel


@dataclass(frozen=True)
class ObjectiveContext:
    """What an objective may use when it is built."""

    tokenizer: Any
    train_records: list[dict]
    device: str
    val_records: Sequence[dict] = ()  # what a calibrated quality gate is calibrated on


@dataclass
class ExtraLoss:
    loss: torch.Tensor  # weighted, with gradient
    value: float  # the weighted term summed over processes, for the log
    logged: dict[str, float] = field(default_factory=dict)
    # the state its backward runs in: the loop calls loss.backward() inside it, after the CE
    # term's own backward (gradients add up). A term computed in another module state (the
    # polychromic term, without dropout) needs that state again when gradient checkpointing
    # recomputes its forward during the backward.
    backward_context: Callable[[], AbstractContextManager] = contextlib.nullcontext


class Objective(Protocol):
    log_fields: tuple[str, ...]  # its columns of training_log.csv

    def extra_loss(self, model: Any, batch: dict, step: Step) -> ExtraLoss | None:
        """The term added to the CE loss at this step (None: nothing); `batch` holds every
        example of the step, its micro-batches in order."""

    def summary(self) -> dict[str, Any]:
        """Numbers for run.json."""


def build_objective(name: str, settings: Any, context: ObjectiveContext) -> Objective:
    """The registered objective `name` built from its settings."""
    return objectives.implementation(name)(settings, context)

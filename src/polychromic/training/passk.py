"""Pass@k training (Chen et al. 2025, "Pass@k Training for Adaptively Balancing Exploration and
Exploitation of Large Reasoning Models", arXiv 2508.10751, Section 3.3): the analytical group
advantage of a binary pass at k. Registered as objective `passk_training`; the sampling,
reward, policy-gradient term and KL are shared (`polychromic.training.sampled`).

A reply passes when its reward under the TRAINING reward encoder reaches the threshold
(g_i = 1[r_i >= quality_threshold]); the evaluation judge is never used. With N replies of a
prompt, N_neg of which fail, every group of k replies scores 1 if any of them passes, and each
reply is credited by the mean normalised score of the groups that contain it, in closed form:

    R     = 1 - C(N_neg, k) / C(N, k)                  mean group score (the pass@k estimator)
    sigma = sqrt(R (1 - R))                            its std over the groups
    A_pos = (1 - R) / sigma                            a passing reply: its groups all pass
    A_neg = (1 - R - C(N_neg - 1, k - 1) / C(N - 1, k - 1)) / sigma
                                                       a failing reply: its groups fail only
                                                       when the k - 1 others fail too

sigma is floored at advantage_std_floor (and not divided by when normalize_advantages is off).
A group that all passes or all fails has R in {0, 1} and every advantage 0. k = 1 gives GRPO on
the binary reward.
"""

from __future__ import annotations

from math import comb

import numpy as np

from polychromic.training.sampled import SampledObjective


def passk_advantages(passed: np.ndarray, k: int, normalize: bool, floor: float
                     ) -> tuple[np.ndarray, dict[str, float]]:
    """A_i for one prompt's pass flags (module docstring), plus the group pass@k R."""
    n = len(passed)
    n_neg = int(n - np.sum(passed))
    group = 1.0 - comb(n_neg, k) / comb(n, k)
    fail_together = comb(n_neg - 1, k - 1) / comb(n - 1, k - 1) if n_neg else 0.0
    raw = np.where(passed, 1.0 - group, 1.0 - group - fail_together)
    sigma = max(float(np.sqrt(group * (1.0 - group))), floor) if normalize else 1.0
    return raw / sigma, {"group_pass_at_k": group,
                         "raw_advantage_magnitude": float(np.abs(raw).mean())}


class PassAtKObjective(SampledObjective):
    """The pass@k group advantage (module docstring) in the shared sampling objective."""

    advantage_fields = ("group_pass_at_k",)

    def advantages(self, rewards: np.ndarray, embeddings: np.ndarray
                   ) -> tuple[np.ndarray, dict[str, float]]:
        c = self.settings
        return passk_advantages(rewards >= self.quality_threshold, c.k, c.normalize_advantages,
                                c.advantage_std_floor)

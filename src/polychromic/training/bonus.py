"""Diversity as a per-sample bonus: the comparison Hamid et al. (2025, arXiv 2509.25424) draw
between set-level RL and "a diversity bonus". Registered as objective `diversity_bonus`; the
sampling, reward, policy-gradient term and KL are shared (`polychromic.training.sampled`).

Each reply gets its own reward plus beta times its quality-gated mean distance to the other
replies of its prompt, and GRPO's group-relative advantage (Shao et al. 2024, arXiv 2402.03300)
credits it alone:

    b_i  = (1 / (N-1)) sum_{j != i} g_i g_j (1 - cos(e_i, e_j))   gated as polychromic's d(S)
    r'_i = r_i + beta * b_i                                       beta = diversity_weight
    A_i  = (r'_i - mean_j r'_j) / max(std_j r'_j, floor)          (not divided when
                                                                  normalize_advantages is off)

Same sampling, reward encoder, gate and lambda weighting as `polychromic`, so the two differ
only in set-level versus per-sample credit. A reply that is not good gets no bonus and a reward
below tau, so it never outranks a good reply (whose r' >= tau): the junk property of the
polychromic gate holds here too (tested).
"""

from __future__ import annotations

import numpy as np

from polychromic.training.sampled import SampledObjective, standardise


def diversity_bonus(embeddings: np.ndarray, good: np.ndarray) -> np.ndarray:
    """b_i: mean over j != i of g_i g_j (1 - cos(e_i, e_j)); embeddings are unit rows."""
    n = len(good)
    distance = 1.0 - embeddings @ embeddings.T
    gate = np.outer(good, good).astype(float)
    np.fill_diagonal(gate, 0.0)
    return (gate * distance).sum(axis=1) / (n - 1)


def bonus_advantages(rewards: np.ndarray, embeddings: np.ndarray, beta: float,
                     normalize: bool, floor: float, threshold: float
                     ) -> tuple[np.ndarray, dict[str, float]]:
    """A_i for one prompt (module docstring) and its statistics."""
    bonus = diversity_bonus(embeddings, rewards >= threshold)
    shaped = rewards + beta * bonus
    centred = standardise(shaped, False, floor)
    advantages = standardise(shaped, normalize, floor)
    return advantages, {"mean_bonus": float(bonus.mean()),
                        "raw_advantage_magnitude": float(np.abs(centred).mean())}


class DiversityBonusObjective(SampledObjective):
    """The per-sample bonus advantage (module docstring) in the shared sampling objective."""

    advantage_fields = ("mean_bonus",)

    def advantages(self, rewards: np.ndarray, embeddings: np.ndarray
                   ) -> tuple[np.ndarray, dict[str, float]]:
        c = self.settings
        return bonus_advantages(rewards, embeddings, c.diversity_weight, c.normalize_advantages,
                                c.advantage_std_floor, self.quality_threshold)

"""The polychromic objective (after Hamid et al., "Polychromic Objectives for Reinforcement
Learning", 2025, arXiv 2509.25424): score SETS of generations by quality times diversity, and
credit each generation by the sets it belongs to. Registered as objective `polychromic`
(`polychromic.objectives`, where its settings and their defaults live); the sampling, the
reward r_i, the policy-gradient term and the KL penalty are shared with the other sampling
objectives (`polychromic.training.sampled`, whose docstring has the loss).

For a prompt's N replies with rewards r_i, good-flags g_i = 1[r_i >= tau] and unit embeddings
e_i under the reward encoder:

    d(S)  = (1 / C(|S|,2)) sum_{i<j in S} g_i g_j (1 - cos(e_i, e_j))
                                                             diversity among the good replies
    f(S)  = ( mean_{i in S} r_i ) * d(S)                     for every subset S of size n
    A_i   = mean_{S : i in S} f(S)  -  mean_S f(S)           marginal advantage
    A_i  <- A_i / max(std_j A_j, floor)                      when normalize_advantages

With `ce_weight: 0` (and optionally `kl_weight > 0`) this is the pure set-RL objective: the
polychromic advantage without the cross-entropy anchor, closer to the paper's Polychromic PPO
and to Poly-EPO (arXiv 2604.17654), which change only the advantage of PPO/GRPO.

Why the gate g: with d over all replies, an empty or gibberish reply is far from the others and
raises d(S), so junk earned a positive advantage. Gating the diversity by quality is the idea of
quality-aware diversity rewards (DARLING, Li et al. 2025, arXiv 2509.02534, multiplies a
quality reward by a diversity reward); here only pairs of good replies count. Then a reply that
is not good never gets a higher advantage than a good one of the same prompt: replacing it by
the good one in any set raises the mean reward and cannot lower d(S) (a test checks it). The
price: a prompt with fewer than two good replies has d = 0 for every set, hence no policy
gradient (the CE term still trains on it); `good_fraction` in the training log shows how often
replies pass, and tau is on the reward's scale (a cosine for `semantic`, an F1 for `rougeL`).

The ablation `quality_rl` (`QualityRLObjective`) is this objective with the diversity factor
off: f(S) = mean_{i in S} r_i, the same subsets, marginal advantage and normalisation. The
study's polychromic LoRA differs from SFT in two ways, RL on a quality reward and the diversity
term; `quality_rl` keeps the first and drops the second. Its advantage has a closed form. With
N replies and subsets of size n, each reply lies in C(N-1, n-1) of the C(N, n) subsets, and
given i in S each other reply j lies in S with probability (n-1)/(N-1), so

    mean_S f(S)          = rbar = (1/N) sum_j r_j
    mean_{S: i in S} f(S) = (1/n) (r_i + (n-1)/(N-1) (N rbar - r_i))
    A_i                  = c (r_i - rbar),   c = (N-n) / (n (N-1))   (0 < c <= 1 for 1 <= n < N)

(n = 1 gives c = 1, n = N gives c = 0, which is why set_size < num_samples). Normalised,
A_i / max(std_j A_j, floor) = (r_i - rbar) / max(std_j r_j, floor / c): GRPO's group-relative
advantage (Shao et al. 2024, DeepSeekMath, arXiv 2402.03300), with the floor applied on the
scale of A. So `quality_rl` is quality-only set-RL, and `set_size` changes it only through c,
where the floor bites; it is kept equal to polychromic's so that the two differ in the diversity
factor alone. The advantages do not depend on the embeddings; the training log still shows the
gated set diversity d(S) of the samples (`mean_set_diversity`), the diversity the objective
ignores, so that the two runs' curves show whether the samples lose diversity without the term.
"""

from __future__ import annotations

import itertools

import numpy as np

from polychromic.similarity import semantic_diversity
from polychromic.training.sampled import SampledObjective


def set_diversity(embeddings: np.ndarray, good: np.ndarray, subset: tuple[int, ...]) -> float:
    """d(S): mean over the C(|S|,2) pairs of S of g_i g_j (1 - cos(e_i, e_j))."""
    members = list(subset)
    kept = [i for i in members if good[i]]
    if len(kept) < 2:
        return 0.0
    pairs_kept = len(kept) * (len(kept) - 1) / 2
    pairs_all = len(members) * (len(members) - 1) / 2
    return semantic_diversity(embeddings[kept]) * pairs_kept / pairs_all


def marginal_advantages(rewards: np.ndarray, embeddings: np.ndarray, set_size: int,
                        normalize: bool, floor: float, threshold: float, diversity: bool = True
                        ) -> tuple[np.ndarray, dict[str, float]]:
    """A_i for one prompt (module docstring). rewards: (N,), embeddings: (N, d) unit rows;
    `threshold` is the quality gate tau (0: every reply counts); `diversity` False drops the
    factor d(S) from f(S) (objective `quality_rl`: the advantages ignore the embeddings, while
    `mean_set_diversity` still reports d(S) of the replies). Returns (A, stats)."""
    n_samples = len(rewards)
    good = rewards >= threshold
    subsets = list(itertools.combinations(range(n_samples), set_size))
    diversities = np.array([set_diversity(embeddings, good, s) for s in subsets])
    scores = np.array([float(np.mean(rewards[list(s)])) for s in subsets])
    if diversity:
        scores = scores * diversities
    overall = scores.mean()
    advantages = np.empty(n_samples)
    for i in range(n_samples):
        containing = [f for s, f in zip(subsets, scores, strict=True) if i in s]
        advantages[i] = np.mean(containing) - overall
    raw_magnitude = float(np.abs(advantages).mean())
    if normalize:
        advantages = advantages / max(float(advantages.std()), floor)
    stats = {"mean_set_score": float(overall),
             "mean_set_diversity": float(diversities.mean()),
             "raw_advantage_magnitude": raw_magnitude, "good_fraction": float(good.mean())}
    return advantages, stats


class PolychromicObjective(SampledObjective):
    """The marginal set advantage (module docstring) in the shared sampling objective."""

    advantage_fields = ("mean_set_diversity",)
    diversity = True  # f(S) = mean reward x d(S); QualityRLObjective turns the factor off

    def advantages(self, rewards: np.ndarray, embeddings: np.ndarray
                   ) -> tuple[np.ndarray, dict[str, float]]:
        c = self.settings
        return marginal_advantages(rewards, embeddings, c.set_size, c.normalize_advantages,
                                   c.advantage_std_floor, self.quality_threshold, self.diversity)


class QualityRLObjective(PolychromicObjective):
    """The ablation `quality_rl`: the marginal set advantage with f(S) = mean reward, i.e.
    GRPO's group-relative advantage (module docstring). `mean_set_diversity` is logged as the
    diversity of the samples that the objective ignores."""

    diversity = False

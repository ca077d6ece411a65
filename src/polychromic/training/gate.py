"""The quality gate of the sampling objectives, and how often their policy term was zero.

Why: the gate tau (`quality_threshold`) decides which sampled replies count as good (the
polychromic set score, the diversity bonus, pass@k training). A number fixed on one encoder's
cosine scale means nothing on another corpus: on a real conversational corpus replies and
references have MiniLM cosines around 0.1 to 0.3, so a gate of 0.7 is never reached, every set
scores 0, every advantage is 0, and the "polychromic" adapter comes out as the baseline's, bit
for bit. So by default (`quality_threshold: null`) the gate is calibrated on the validation
split by the rule that calibrates the judge's pass threshold (`evaluation.calibration`), on the
reward's own scale:

- positive: a validation reference r against its best match among the other references of its
  own tweet, max_{r' in R(x), r' != r} reward(r, r');
- negative: r against its best match among the references of one other validation tweet, drawn
  by `random.Random(GATE_SEED)` (the same for every seed of a study, so all seeds train with one
  gate);
- tau = the midpoint of the best split by Youden's J = TPR - FPR (ties to the lower).

reward(., .) is the objective's own: the reward encoder's cosine for `reward: semantic`, ROUGE-L
F1 for `reward: rougeL`, each clipped to [0, 1] as the reward is. run.json records the gate
(`quality_gate`: threshold, source, TPR, FPR, pair counts). A number in the config fixes it.

`zero_term_summary` counts, from the training log's rows, the sampling steps whose advantages
were all exactly zero (`advantage_magnitude` 0: no gradient from the policy term at that step;
the rows are checkpointed, so a resumed run counts every step, and under data parallelism the
logged magnitude is the mean over all processes); run.json, the aggregate, the verdict's
warnings and the paper report the share, since an objective whose term is mostly zero is the
baseline in all but name.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

from polychromic.evaluation.pairs import best_cosine, pooled, scores, youden_threshold
from polychromic.similarity import rouge_l_similarity

GATE_SEED = 0
# above this share of sampling steps with an all-zero policy term, the reports say so
ZERO_TERM_WARNING = 0.5
# why every advantage of a step is 0, in the objectives that gate by quality
ZERO_CAUSE = ("every group's advantages were 0 at the quality gate{at} (for polychromic, fewer "
              "than two replies of a prompt reached it; for pass@k training, all of a prompt's "
              "replies passed or all failed)")
RULE = ("Youden's J over validation reference pairs on the reward's own scale (each reference "
        "against its best match among its tweet's other references, and among one random "
        "other tweet's), the rule of the judge's pass threshold")

Encode = Callable[[list[str]], np.ndarray]  # texts -> unit-norm embeddings


def reward_similarity(reward: str, encode: Encode, texts: list[str]
                      ) -> Callable[[list[str], list[str]], np.ndarray]:
    """(texts, candidates) -> each text's reward against its best-matching candidate, clipped
    to [0, 1] as the reward is; for the semantic reward `texts` are embedded up front."""
    if reward == "semantic":
        cosine = best_cosine(encode, texts)
        return lambda texts, candidates: np.clip(cosine(texts, candidates), 0.0, 1.0)
    return lambda texts, candidates: np.clip(
        np.asarray(rouge_l_similarity(texts, candidates), dtype=np.float64), 0.0, 1.0)


def calibrate_gate(val_records: list[dict], reward: str, encode: Encode) -> dict[str, Any]:
    """The gate calibrated on the validation records (module docstring); ValueError naming the
    cause when the split has no tweet with two references to pair."""
    if not val_records:
        raise ValueError("quality_threshold: null calibrates the gate on the validation split, "
                         "and no validation record was given (ObjectiveContext.val_records)")
    groups: dict[str, list[dict]] = defaultdict(list)
    for record in val_records:
        if record["reply"].strip():
            groups[record["tweet_id"]].append(record)
    texts = [r["reply"] for refs in groups.values() for r in refs]
    per_tweet = scores(groups, reward_similarity(reward, encode, texts), GATE_SEED)
    positives, negatives = pooled(per_tweet)
    if positives.size == 0 or negatives.size == 0:
        raise ValueError("quality_threshold: null calibrates the gate on validation tweets with "
                         f"at least two references, scored against another tweet's: the "
                         f"validation split gives {positives.size} such pairs and "
                         f"{negatives.size} pairs with another tweet ({len(groups)} tweets); "
                         "set quality_threshold to a number")
    return {**youden_threshold(positives, negatives), "source": "validation", "rule": RULE,
            "reward": reward, "positives": int(positives.size),
            "negatives": int(negatives.size)}


def fixed_gate(threshold: float, reward: str) -> dict[str, Any]:
    """The record of a gate set in the config."""
    return {"threshold": float(threshold), "source": "config", "reward": reward}


def zero_term_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """{sampling_steps, zero_term_steps, zero_term_share} from the training log's rows (a
    sampling step logs `advantage_magnitude`); empty where no step sampled (sft)."""
    sampled = [row["advantage_magnitude"] for row in rows
               if row.get("advantage_magnitude") is not None]
    if not sampled:
        return {}
    zero = sum(1 for magnitude in sampled if magnitude == 0.0)
    return {"sampling_steps": len(sampled), "zero_term_steps": zero,
            "zero_term_share": zero / len(sampled)}


def zero_term_sentence(experiment: str, steps: int, sampling_steps: int,
                       gate: float | None) -> str:
    """The warning of an experiment whose policy term was zero in most sampling steps."""
    at = f" {gate:.3f}" if gate is not None else ""
    return (f"the policy-gradient term of experiment {experiment} was zero in {steps} of "
            f"{sampling_steps} sampling steps (summed over seeds): {ZERO_CAUSE.format(at=at)}, "
            "so in those steps only its other terms (the CE anchor, a KL penalty) trained it "
            "(run.json: zero_term_share, quality_gate)")

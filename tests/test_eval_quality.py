"""Quality metrics: ROUGE against rouge-score, BERTScore against a direct computation."""

from __future__ import annotations

import math
import os
import random

import pytest
import torch
from rouge_score import rouge_scorer

from polychromic.embeddings import get_encoder
from polychromic.encoders import minilm_path as default_model_path
from polychromic.evaluation.quality import (
    _bert_score_model_type,
    bertscore_best,
    perplexity,
)
from polychromic.similarity import lcs_length, rouge_best, rouge_l_similarity

REFS = ["The team played really well tonight.", "What a comeback in the second half!"]
GREEDY = "The team played well in the second half"


def test_rouge_best_matches_rouge_score_max_over_references() -> None:
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    direct = [scorer.score(ref, GREEDY) for ref in REFS]
    got = rouge_best(GREEDY, REFS)
    for name in ("rouge1", "rouge2", "rougeL"):
        assert got[name] == pytest.approx(max(d[name].fmeasure for d in direct))
    assert got["rouge2"] > 0  # best reference differs per type here; still a real overlap


def test_bit_parallel_lcs_equals_rouge_score_table() -> None:
    rng = random.Random(0)
    vocabulary = list("abcdef")
    for _ in range(3000):
        a = [rng.choice(vocabulary) for _ in range(rng.randrange(0, 70))]  # > 64 bits too
        b = [rng.choice(vocabulary) for _ in range(rng.randrange(0, 40))]
        table = rouge_scorer._lcs_table(a, b) if a and b else [[0]]
        assert lcs_length(a, b) == table[-1][-1], (a, b)


def test_fast_rouge_l_similarity_equals_rouge_score_exactly() -> None:
    rng = random.Random(1)
    words = "the a team game won lost played playing really well tonight what comeback".split()
    texts = [" ".join(rng.choice(words) for _ in range(rng.randrange(1, 15)))
             for _ in range(200)]
    for start in range(0, 200, 20):
        refs = texts[start:start + 3]
        samples = texts[start + 3:start + 20] + ["", " ", "?!", refs[0], texts[start + 5]]
        got = rouge_l_similarity(samples, refs)
        assert list(got) == [rouge_best(s, refs, ("rougeL",))["rougeL"] for s in samples]


def test_empty_greedy_scores_zero() -> None:
    assert rouge_best("", REFS) == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    assert rouge_best("  \n", REFS)["rougeL"] == 0.0
    scores = bertscore_best(["", GREEDY, " "], [REFS, REFS, REFS], default_model_path(), 6)
    assert scores[0] == 0.0 and scores[2] == 0.0 and scores[1] > 0.5


def _direct_bertscore_f1(candidate: str, reference: str, layer: int) -> float:
    """Greedy cosine matching of layer-`layer` token vectors, as Zhang et al. define it."""
    encoder = get_encoder(str(default_model_path()))  # the plain MiniLM AutoModel, cached
    tokenizer, model = encoder.tokenizer, encoder.model

    def tokens(text: str) -> torch.Tensor:
        ids = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**ids, output_hidden_states=True).hidden_states[layer][0]
        return torch.nn.functional.normalize(hidden, dim=-1)

    c, r = tokens(candidate), tokens(reference)
    sim = c @ r.T  # [CLS]/[SEP] can be matched but carry no weight (bert_score, idf off)
    precision = sim.max(dim=1).values[1:-1].mean().item()
    recall = sim.max(dim=0).values[1:-1].mean().item()
    return 2 * precision * recall / (precision + recall)


@pytest.mark.parametrize("layer", [6, 3])
def test_bertscore_matches_direct_computation_and_takes_best_reference(layer: int) -> None:
    direct = [_direct_bertscore_f1(GREEDY, ref, layer) for ref in REFS]
    got = bertscore_best([GREEDY], [REFS], default_model_path(), layer)[0]
    assert got == pytest.approx(max(direct), abs=1e-4)
    assert direct[0] != pytest.approx(direct[1], abs=1e-3)  # the max is a real choice


def test_t5_in_model_path_is_avoided(tmp_path) -> None:
    link = tmp_path / "my_t5_models"
    link.symlink_to(default_model_path(), target_is_directory=True)
    safe = _bert_score_model_type(link)
    assert "t5" not in safe
    assert os.path.samefile(os.path.join(safe, "config.json"), default_model_path() / "config.json")


def test_perplexity() -> None:
    assert perplexity([10.0, 6.0], [5, 3]) == pytest.approx(math.exp(2.0))
    assert math.isnan(perplexity([], []))
    with pytest.raises(ValueError):
        perplexity([1.0], [1, 2])


def test_judge_precision_auto_is_bfloat16_only_where_native() -> None:
    from polychromic.embeddings import native_bfloat16, resolve_precision

    assert resolve_precision("auto") == ("bfloat16" if native_bfloat16() else "float32")
    assert resolve_precision("float32") == "float32"
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("int8")


def test_bfloat16_embeddings_stay_within_1e_3_of_float32() -> None:
    from polychromic.embeddings import SentenceEncoder

    texts = REFS + [GREEDY, "ok", "no way this is happening again, not tonight"]
    full = SentenceEncoder(default_model_path()).encode(texts)
    half = SentenceEncoder(default_model_path(), precision="bfloat16").encode(texts)
    assert full.dtype == half.dtype == "float32"
    assert (full * half).sum(axis=1).min() > 1 - 1e-3  # cosine to the float32 vector
    assert not (full == half).all()  # the autocast really ran in bfloat16

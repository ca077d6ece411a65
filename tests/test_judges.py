"""The judges: the demo oracle against the corpus's own labels, the primary judge's choice, the
agreement counts, and their summaries over seeds (validity against the oracle, independence
from the training reward, room for pass@k)."""

from __future__ import annotations

import json
from collections import defaultdict
from types import SimpleNamespace

import numpy as np
import pytest

from polychromic.data import demo
from polychromic.evaluation import agreement
from polychromic.evaluation.coverage import coverage_of_hits
from polychromic.evaluation.judges import JUDGES, Decisions, readings, resolve_kind
from polychromic.reporting import judges as summaries
from polychromic.settings import section


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[dict]:
    path = tmp_path_factory.mktemp("demo") / "raw.jsonl"
    demo.generate_demo(path, n_tweets=400, seed=0)
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # the corpus's deliberately malformed lines
        if isinstance(record, dict) and "reply" in record:
            records.append(record)
    return records


def prompts(records: list[dict]) -> dict[str, dict]:
    """One generation-like record per tweet: its clean references, their stances, its topic."""
    by_tweet: dict[str, dict] = {}
    for record in records:
        if record["stance"] not in demo.STANCES:
            continue
        prompt = by_tweet.setdefault(record["tweet_id"], {
            "prompt_id": record["tweet_id"], "topic": record["topic"], "references": [],
            "reference_stances": []})
        prompt["references"].append(record["reply"])
        prompt["reference_stances"].append(record["stance"])
    return by_tweet


def oracle(record: dict, samples: list[str]) -> Decisions:
    return JUDGES["oracle"].decide(SimpleNamespace(records=[{**record, "samples": samples}]))


def test_the_oracle_passes_every_clean_reply_for_its_own_tweet(corpus) -> None:
    tweets = prompts(corpus)
    for prompt in tweets.values():
        decided = oracle(prompt, prompt["references"])
        assert decided.passed[0].all(), prompt["references"]
        assert not decided.unknown[0].any()
        assert decided.hits[0] == prompt["reference_stances"]


def test_the_oracle_fails_another_stance_or_another_topic(corpus) -> None:
    tweets = list(prompts(corpus).values())
    other_stance = other_topic = 0
    for prompt in tweets:
        for reply, stance in zip(prompt["references"], prompt["reference_stances"],
                                 strict=True):
            for other in tweets:
                if other["topic"] == prompt["topic"] and stance not in other[
                        "reference_stances"]:
                    assert not oracle(other, [reply]).passed[0][0]
                    other_stance += 1
                    break
            rival = next(t for t in tweets if t["topic"] != prompt["topic"])
            assert not oracle(rival, [reply]).passed[0][0]
            other_topic += 1
    assert other_stance > 100 and other_topic > 1000  # the checks did run


def test_the_oracle_answers_unknown_for_noise_and_gibberish(corpus) -> None:
    clean = {r["reply"] for r in corpus if r["stance"] in demo.STANCES}
    noise = [r["reply"] for r in corpus if r["stance"] == demo.NOISE_STANCE
             and r["reply"] not in clean]  # a duplicate-kind noise record is a clean reply
    prompt = next(iter(prompts(corpus).values()))
    texts = noise + ["asdf qwer zxcv", "", "Well said! To be fair, downsides. Quick question?"]
    decided = oracle(prompt, texts)
    assert len(noise) > 20 and decided.unknown[0][[i for i, t in enumerate(texts) if t.strip()]
                                                   ].all()
    assert not decided.passed[0].any()


def test_auto_is_the_oracle_on_demo_labels_and_similarity_elsewhere(corpus) -> None:
    demo_records = [{**p, "samples": []} for p in prompts(corpus).values()]
    assert resolve_kind("auto", demo_records) == "oracle"
    plain = [{"prompt_id": "p", "references": ["hello there"], "reference_stances": None}]
    assert resolve_kind("auto", plain) == "similarity"
    with pytest.raises(ValueError, match="the oracle judge cannot decide here"):
        resolve_kind("oracle", plain)
    with pytest.raises(ValueError, match="unknown judge kind"):
        resolve_kind("llm", plain)
    assert readings("oracle", ["similarity", "oracle"], demo_records) == ["similarity"]
    assert readings("similarity", ["similarity", "oracle"], plain) == []


def test_coverage_counts_the_distinct_modes_the_judge_hits() -> None:
    assert coverage_of_hits(["agree", None, "agree", "question"],
                            ["agree", "question", "question"]) == (1.0, 2, 2)
    assert coverage_of_hits([None, "agree"], ["agree", "anecdote"]) == (0.5, 1, 2)
    with pytest.raises(ValueError, match="not modes of the references"):
        coverage_of_hits(["counterpoint"], ["agree"])


def test_confusion_and_pooled_pearson() -> None:
    truth = Decisions([np.array([True, True, False, False, False])],
                      [np.array([False, False, True, False, False])], [[None] * 5], None)
    counts = agreement.confusion([np.array([True, False, True, False, True])], truth)
    assert counts == {"tp": 1, "fp": 2, "fn": 1, "tn": 1, "n": 5, "oracle_unknown": 1}
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=200), rng.normal(size=200)
    y += x
    parts = [agreement.pearson_sums(x[:80], y[:80]), agreement.pearson_sums(x[80:], y[80:])]
    pooled = {key: parts[0][key] + parts[1][key] for key in parts[0]}
    assert agreement.pearson(pooled) == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert agreement.pearson(agreement.pearson_sums(np.ones(5), y[:5])) is None


def test_reward_agreement_counts_both_decisions() -> None:
    decided = Decisions([np.array([True, True, False, False])], [np.zeros(4, bool)],
                        [[None] * 4], [np.array([0.9, 0.8, 0.3, 0.1])])
    block = agreement.reward_agreement(decided, [np.array([0.95, 0.5, 0.75, 0.2])], 0.7)
    assert (block["both"], block["neither"], block["judge_only"], block["reward_only"]) == (
        1, 1, 1, 1)
    assert block["scored"] and block["n"] == 4
    binary = Decisions(decided.passed, decided.unknown, decided.hits, None)
    assert agreement.reward_agreement(binary, [np.zeros(4) + 0.5], 0.7)["scored"] is False


def passk_doc(seed: int, counts: dict, sums: dict) -> dict:
    return {"seed": seed, "settings": {"agreement": {"reward": {"reward": "semantic"}}},
            "systems": {"a": {"judge_validity": counts, "judge_reward": sums},
                        "b": {"judge_validity": counts, "judge_reward": sums}}}


def test_validity_over_seeds_and_the_independence_warning() -> None:
    counts = {"similarity": {"tp": 40, "fp": 10, "fn": 20, "tn": 30, "n": 100,
                             "oracle_unknown": 5}}
    rng = np.random.default_rng(1)
    score = rng.uniform(size=300)
    close = {"similarity": {**agreement.pearson_sums(score, score + rng.normal(0, .02, 300)),
                            "both": 100, "neither": 150, "judge_only": 30, "reward_only": 20,
                            "scored": True}}
    docs = [passk_doc(1, counts, close), passk_doc(2, counts, close)]
    validity = summaries.judge_validity(docs)
    overall = validity["judges"]["similarity"]["overall"]
    # 4 x the table: accuracy 0.7; p_e = 0.5 x 0.6 + 0.5 x 0.4 = 0.5, kappa = 0.4
    assert overall["accuracy"] == pytest.approx(0.7) and overall["kappa"] == pytest.approx(0.4)
    assert overall["precision"] == pytest.approx(0.8) and overall["recall"] == pytest.approx(2 / 3)
    assert overall["n"] == 400 and overall["oracle_unknown_share"] == pytest.approx(0.05)
    assert set(validity["judges"]["similarity"]["systems"]) == {"a", "b"}
    reward = summaries.judge_reward(docs)
    assert reward["judges"]["similarity"]["pearson"] > 0.9
    assert reward["not_independent"] == ["similarity"]
    assert reward["judges"]["similarity"]["agreement"] == pytest.approx(250 / 300)
    warned = summaries.warnings(reward, {"available": False})
    assert len(warned) == 1 and "not independent of the reward" in warned[0]
    assert summaries.judge_validity([{"systems": {"a": {}}}])["available"] is False


def test_the_verdicts_k_is_the_largest_with_room_on_validation() -> None:
    settings = section("evaluation", {"headroom": 0.85})
    selection = {"target_system": "base", "systems": {"base": {"candidates": {"base": {
        "pass@1": 0.6, "pass@3": 0.8, "pass@5": 0.9, "pass@10": 0.97}}}}}
    metrics = ["pass@1", "pass@3", "pass@5", "pass@10"]
    block = summaries.headroom(selection, settings, metrics)
    assert block["k"] == 3 and block["room"] and block["chosen_by"] == "validation"
    none = {"target_system": "base", "systems": {"base": {"candidates": {"base": {
        "pass@1": 0.9, "pass@3": 0.97, "pass@10": 0.99}}}}}
    block = summaries.headroom(none, settings, metrics)
    assert block["k"] == 10 and not block["room"]
    assert "no room for pass@k" in summaries.warnings({}, block)[0]
    fixed = summaries.headroom(selection, section("evaluation", {"verdict_k": 10}), metrics)
    assert fixed["k"] == 10 and fixed["chosen_by"] == "config" and not fixed["room"]
    assert summaries.headroom(None, settings, metrics)["k"] == 10


def test_every_demo_topic_and_stance_is_decided_from_its_own_template() -> None:
    """The classifier reads the generator's own templates: every filled template of every
    topic and stance comes back as that topic and stance."""
    rng = __import__("random").Random(0)
    found = defaultdict(int)
    for topic in demo.TOPICS:
        for stance, templates in demo.REPLY_TEMPLATES.items():
            for template in templates:
                text = demo._fill(template, topic, rng)
                assert demo.reply_topic_and_stance(text) == (topic, stance), text
                found[stance] += 1
    assert set(found) == set(demo.STANCES)


def test_the_paper_says_who_judged_and_how_far_to_trust_it() -> None:
    counts = {"tp": 40, "fp": 10, "fn": 20, "tn": 30, "n": 100, "oracle_unknown": 5}
    validity = {"available": True, "judges": {"similarity": {
        "overall": summaries.validity_stats(counts), "systems": {}}}}
    aggregated = {"settings": {"passk": {"judges": {"primary": "oracle"}}},
                  "judge_validity": validity,
                  "judge_reward": {"judges": {"similarity": {"pearson": 0.95, "agreement": 0.8,
                                                             "scored": True, "n": 100}},
                                   "not_independent": ["similarity"]}}
    text = summaries.paper_sentences(aggregated)
    assert "the oracle judge" in text and "5.0% of the test samples match no template" in text
    assert "the similarity judge decides 0.700 of the test samples alike (Cohen's kappa 0.400" \
        in text
    assert "r = 0.95" in text and "it is not independent of the reward" in text
    plain = {"settings": {"passk": {"judges": {"primary": "similarity"}}}}
    assert summaries.paper_sentences(plain) == ""


def test_the_diversity_terms_own_effect_is_worded_from_its_block() -> None:
    from polychromic.reporting.paper_text import diversity_sentence

    row = {"metric": "pass@5", "label": "pass@5", "diff": -0.04, "ci_low": -0.07,
           "ci_high": -0.01, "p_holm": 0.01, "direction": "worse", "detectable": True}
    block = {"available": True, "verdict": "worse", "reference": "polychromic_lora",
             "matched": "quality_rl_lora", "rows": [{**row, "metric": "pass@1"}, row]}
    text = diversity_sentence(block)
    assert text.startswith("Against quality_rl_lora, the same objective without its diversity "
                           "term, at matched pass@1, polychromic_lora is worse than it")
    assert "the diversity term's own effect" in text and "-0.040" in text
    assert "no finding (inconclusive (unmatched))" in diversity_sentence(
        {**block, "verdict": "inconclusive (unmatched)"})
    assert diversity_sentence(None) == ""

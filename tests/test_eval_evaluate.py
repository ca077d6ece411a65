"""evaluate_seed end to end on a small crafted generations set (3 systems x 5 prompts x 4)."""

from __future__ import annotations

import json
import math

import pytest

from polychromic.evaluation.evaluate import common_prompt_means, evaluate_seed, metric_entry
from polychromic.evaluation.registry import get_metric
from polychromic.io import write_jsonl
from polychromic.settings import section

PROMPTS = [
    ("t1", "Big match tonight!", ["Can't wait for kickoff.", "Who do you think wins?"]),
    ("t2", "Coffee or tea?", ["Coffee, always coffee."]),
    ("t3", "It will rain all week.", ["Time to stay in and read.", "Ugh, my bike commute."]),
    ("t4", "New phone launched today.", ["Too expensive for me."]),
    ("t5", "Voting opens tomorrow.", ["Remember to bring your ID!", "Where is my polling place?"]),
]
DIVERSE = [
    "I am so excited about this",
    "Honestly I could not care less",
    "Who is going to pay for all of it?",
    "My cat just knocked my coffee over",
]
SETTINGS = section("evaluation", {
    "reference_system": "polychromic_lora",
    "judge": "all-MiniLM-L6-v2",  # the small encoder keeps this test fast
    "bertscore_layer": 6,
    "passk": {"k": [1, 3, 5], "criterion": "semantic", "threshold": 0.5,
              "lexical_threshold": 0.3},
    "bootstrap_samples": 200,
    "stats_seed": 0,
})


def _records(system: str, temperature: float) -> list[dict]:
    records = []
    for index, (pid, tweet, refs) in enumerate(PROMPTS):
        if system == "polychromic_lora":
            samples = [refs[0], *DIVERSE[1:]]
            greedy = refs[0]
        elif system == "baseline_lora":
            samples = ["Sounds good to me, thanks for sharing"] * 4
            greedy = "Sounds good to me"
        else:  # zero_shot: an empty greedy, and one prompt whose samples have no trigram
            samples = ["ok", "yes sure", "no", ""] if index == 0 else DIVERSE[::-1]
            greedy = "" if index == 1 else DIVERSE[index % 4]
        records.append(
            {
                "prompt_id": pid,
                "tweet": tweet,
                "references": refs,
                "reference_stances": None,
                "greedy": greedy,
                "samples": samples,
                "reference_nll": [12.0 + index for _ in refs],
                "reference_tokens": [6 for _ in refs],
                "system": system,
                "seed": 42,
                "settings": {"num_samples": 4, "temperature": temperature, "top_p": 0.95},
            }
        )
    return records


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("evaluate")
    generations = {}
    for system, temperature in (
        ("zero_shot", 0.7),
        ("baseline_lora", 1.0),
        ("polychromic_lora", 1.0),
    ):
        generations[system] = str(root / f"{system}.jsonl")
        write_jsonl(generations[system], _records(system, temperature))
    names = ("diversity", "quality", "passk", "statistics")
    paths = {name: str(root / "out" / f"{name}.json") for name in names}
    evaluate_seed(generations, paths, settings=SETTINGS, seed=42)

    def strict(token: str) -> float:
        raise ValueError(f"non-strict JSON constant {token}")

    return {
        name: json.loads(open(path).read(), parse_constant=strict) for name, path in paths.items()
    }


def _numbers(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)
    elif isinstance(value, float | int) and not isinstance(value, bool):
        yield value


def test_metric_files_have_the_contract_shape(evaluated) -> None:
    for name in ("diversity", "quality", "passk"):
        data = evaluated[name]
        assert data["seed"] == 42
        assert data["prompt_ids"] == ["t1", "t2", "t3", "t4", "t5"]
        assert list(data["systems"]) == ["zero_shot", "baseline_lora", "polychromic_lora"]
        assert all(math.isfinite(x) for x in _numbers(data))
        settings = data["settings"]
        assert settings["temperature"] == {
            "zero_shot": 0.7,
            "baseline_lora": 1.0,
            "polychromic_lora": 1.0,
        }
        assert settings["passk"]["criterion"] == "semantic" and settings["bertscore_layer"] == 6
        assert settings["judge"]["path"] and settings["judge"]["name"].endswith("MiniLM-L6-v2")
        assert "tok:13a" in settings["metrics"]["self_bleu"]["signature"]
    expected = {
        "diversity": {
            "self_bleu",
            "distinct_1",
            "distinct_2",
            "distinct_3",
            "semantic_diversity",
            "pooled_distinct_1",
            "pooled_distinct_2",
            "pooled_distinct_3",
            "empty_samples",
            "useful_diversity",
            "off_topic_samples",
        },
        "quality": {"rouge1", "rouge2", "rougeL", "bertscore_f1", "perplexity", "empty_greedy"},
        "passk": {
            "pass@1",
            "pass@3",
            "pass@5",
            "pass_counts",
            "unknown_counts",
            "n",
            "lexical_pass@1",
            "lexical_pass@3",
            "lexical_pass@5",
            "lexical_pass_counts",
            "coverage",
            "modes_hit",
            "modes",
        },
    }
    for name, keys in expected.items():
        for metrics in evaluated[name]["systems"].values():
            assert set(metrics) == keys
            for key, entry in metrics.items():
                if key.startswith("pooled"):
                    assert entry["per_prompt"] is None and 0 < entry["mean"] <= 1
                elif key.startswith("empty_"):
                    assert entry["per_prompt"] is None and 0 <= entry["mean"] <= 1
                elif key not in ("pass_counts", "unknown_counts", "n", "pass@5", "modes_hit",
                                 "modes",
                                 "lexical_pass_counts", "lexical_pass@5", "useful_diversity"):
                    assert len(entry["per_prompt"]) == 5 and entry["mean"] is not None


def test_identical_samples_have_self_bleu_one_and_no_semantic_diversity(evaluated) -> None:
    systems = evaluated["diversity"]["systems"]
    assert systems["baseline_lora"]["self_bleu"]["mean"] == pytest.approx(1.0)
    assert systems["baseline_lora"]["semantic_diversity"]["mean"] == pytest.approx(0.0, abs=1e-5)
    assert systems["polychromic_lora"]["self_bleu"]["mean"] < 0.3
    assert systems["polychromic_lora"]["semantic_diversity"]["mean"] > 0.3


def test_undefined_values_are_null_with_a_reason(evaluated) -> None:
    distinct_3 = evaluated["diversity"]["systems"]["zero_shot"]["distinct_3"]
    assert distinct_3["per_prompt"][0] is None and distinct_3["n_defined"] == 4
    assert "trigram" in distinct_3["reason"] or "3-gram" in distinct_3["reason"]
    pass5 = evaluated["passk"]["systems"]["zero_shot"]["pass@5"]
    assert pass5["mean"] is None and "larger than n=4" in pass5["reason"]


def test_quality_and_passk_values(evaluated) -> None:
    quality = evaluated["quality"]["systems"]
    assert quality["zero_shot"]["rougeL"]["per_prompt"][1] == 0.0  # empty greedy
    assert quality["zero_shot"]["empty_greedy"]["mean"] == pytest.approx(1 / 5)  # counted
    assert quality["zero_shot"]["bertscore_f1"]["per_prompt"][1] == 0.0
    assert quality["polychromic_lora"]["rougeL"]["mean"] == pytest.approx(1.0)  # greedy = ref
    assert quality["polychromic_lora"]["bertscore_f1"]["mean"] == pytest.approx(1.0, abs=1e-4)
    assert quality["zero_shot"]["perplexity"]["per_prompt"][0] == pytest.approx(math.exp(2.0))
    passk = evaluated["passk"]["systems"]
    for system in passk.values():
        assert system["n"] == 4 and len(system["pass_counts"]) == 5
        assert all(0 <= c <= 4 for c in system["pass_counts"])
        assert system["pass@1"]["per_prompt"] == pytest.approx(
            [c / 4 for c in system["pass_counts"]]
        )
    assert all(c >= 1 for c in passk["polychromic_lora"]["pass_counts"])  # sample 0 = reference
    # No stances here: modes are clusters of the reference embeddings; sample 0 of polychromic
    # is reference 0, so it covers at least that reference's mode of every prompt.
    assert evaluated["passk"]["settings"]["coverage"]["mode_source"] == "embedding clusters"
    poly = passk["polychromic_lora"]
    pairs = list(zip(poly["modes_hit"], poly["modes"], strict=True))
    assert all(1 <= hit <= modes for hit, modes in pairs)
    assert poly["coverage"]["per_prompt"] == pytest.approx([hit / modes for hit, modes in pairs])
    for system in passk.values():  # no pass, no mode hit
        assert all(
            value == 0.0
            for value, c in zip(
                system["coverage"]["per_prompt"], system["pass_counts"], strict=True
            )
            if c == 0
        )


def _useful(per_system: dict[str, list[float]]) -> dict:
    """useful_diversity (a common_prompts metric) and semantic_diversity (not one) entries of
    each system, with their means re-taken as evaluate_seed does."""
    metrics = [get_metric("useful_diversity"), get_metric("semantic_diversity")]
    results = {"diversity": {system: {metric.name: metric_entry(values, metric.undefined)
                                      for metric in metrics}
                             for system, values in per_system.items()}}
    common_prompt_means(metrics, results)
    return results["diversity"]


def test_useful_diversity_means_are_over_the_prompts_common_to_all_systems() -> None:
    nan = math.nan
    got = _useful({"a": [0.2, nan, 0.4, 0.6, nan], "b": [nan, 0.3, 0.5, 0.7, 0.9]})
    # prompts 2 and 3 are the only ones where both have a value
    assert got["a"]["useful_diversity"]["mean"] == pytest.approx(0.5)
    assert got["b"]["useful_diversity"]["mean"] == pytest.approx(0.6)
    assert got["a"]["useful_diversity"]["n_prompts_common"] == 2
    assert got["b"]["useful_diversity"]["n_prompts_common"] == 2
    assert got["a"]["useful_diversity"]["per_prompt"] == [0.2, None, 0.4, 0.6, None]
    assert got["b"]["useful_diversity"]["n_defined"] == 4  # its own count is still written
    # a metric without the flag keeps the mean over its own defined prompts
    assert got["b"]["semantic_diversity"]["mean"] == pytest.approx(0.6)
    assert "n_prompts_common" not in got["b"]["semantic_diversity"]


def test_useful_diversity_without_a_common_prompt_is_null_with_a_reason(evaluated) -> None:
    got = _useful({"a": [0.1, math.nan], "b": [math.nan, 0.2]})
    for system in ("a", "b"):
        entry = got[system]["useful_diversity"]
        assert entry["mean"] is None and entry["n_prompts_common"] == 0
        assert "no prompt where every system has a value" in entry["reason"]
    # the crafted generations: no prompt has 2 passing samples for every system
    for metrics in evaluated["diversity"]["systems"].values():
        entry = metrics["useful_diversity"]
        assert entry["mean"] is None and entry["n_prompts_common"] == 0 and entry["reason"]
    definition = evaluated["diversity"]["settings"]["metrics"]["useful_diversity"]
    assert "every system has a value" in definition


def test_statistics_file(evaluated) -> None:
    data = evaluated["statistics"]
    assert data["settings"]["reference_system"] == "polychromic_lora"
    assert data["settings"]["correction"] == "holm"
    # diversity (with useful diversity and off-topic samples), quality, pass@1, pass@3, their
    # lexical readings and coverage (pass@5 is null)
    per_prompt_metrics = 7 + 5 + 5
    assert len(data["tests"]) == per_prompt_metrics * 2
    required = {
        "metric",
        "system",
        "other",
        "higher_is_better",
        "n_prompts",
        "mean_reference",
        "mean_other",
        "mean_diff",
        "ci_low",
        "ci_high",
        "p",
        "cohens_d_z",
        "p_holm",
        "better",
    }
    for row in data["tests"]:
        assert required <= set(row)
        assert row["system"] == "polychromic_lora" and row["other"] != "polychromic_lora"
        assert row["better"] in {"polychromic_lora", "other", "none"}
        assert row["p"] is None or row["p_holm"] >= row["p"]
    distinct_3 = next(
        t for t in data["tests"] if t["metric"] == "distinct_3" and t["other"] == "zero_shot"
    )
    assert distinct_3["n_prompts"] == 4


def test_prompt_mismatch_names_the_system(tmp_path) -> None:
    good = _records("polychromic_lora", 1.0)
    write_jsonl(tmp_path / "a.jsonl", good)
    write_jsonl(tmp_path / "b.jsonl", [good[1], good[0], *good[2:]])
    out = {
        name: str(tmp_path / f"{name}.json")
        for name in ("diversity", "quality", "passk", "statistics")
    }
    with pytest.raises(ValueError, match="baseline_lora: prompt ids differ"):
        evaluate_seed(
            {
                "polychromic_lora": str(tmp_path / "a.jsonl"),
                "baseline_lora": str(tmp_path / "b.jsonl"),
            },
            out,
            settings=SETTINGS,
            seed=42,
        )

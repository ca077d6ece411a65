"""The primary rule's level and power, simulated: the level holds with 3 and 5 seeds at every
seed variance (the former Satterthwaite t's does not, so the check can fail), and the power
figure a run reports equals a simulation of the rule by another path (the verdict's own code)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from polychromic.reporting import simulation as sim
from polychromic.reporting.power import (
    BEGIN,
    END,
    describe_power,
    final_test_power,
    level_rows,
    main,
)
from polychromic.reporting.significance import Evidence, detect
from polychromic.settings import section

REF, BASE = "polychromic_lora", "baseline_lora"
FAMILY = ("pass@1", "pass@10", "coverage")


def test_components_are_recovered_by_the_method_of_moments() -> None:
    rng = np.random.default_rng(0)
    truth = sim.Components(0.1, 0.2, 0.3)
    table = sim.draw(rng, truth, 0.0, 1, 40, 2000)[0]
    found = sim.Components.from_matrix(table)
    assert found.seed == pytest.approx(0.1, rel=0.35)
    assert found.tweet == pytest.approx(0.2, rel=0.1)
    assert found.interaction == pytest.approx(0.3, rel=0.02)
    one_seed = sim.Components.from_matrix(table[:1])
    assert one_seed.seed == 0.0 and one_seed.interaction == 0.0


@pytest.mark.parametrize("seeds", [3, 5])
def test_the_rule_holds_its_level_at_every_seed_variance(seeds: int) -> None:
    """3000 simulated null studies per seed sd (200 tweets, tweet and interaction sd 0.2): the
    crossed test rejects at most alpha and alpha / 3 (Holm's first step), the whole rule's
    familywise rate at most alpha, each up to two Monte Carlo SE."""
    replicates = 3000
    for row in level_rows([seeds], 200, 0.2, 0.2, sim_seed_sds(), 0.05, replicates,
                          with_power=False):
        for key, level in (("test_alpha", 0.05), ("test_first_step", 0.05 / 3),
                           ("rule", 0.05)):
            bound = level + 2 * math.sqrt(level * (1 - level) / replicates)
            assert row[key] <= bound, (seeds, row["seed_sd"], key, row[key])


def sim_seed_sds() -> list[float]:
    return [0.0, 0.05, 0.1, 0.2]


def test_the_former_satterthwaite_t_fails_the_same_check() -> None:
    """The check can fail: at 3 seeds and seed sd 0.1 the former rule rejects too often."""
    parts = sim.Components(0.1, 0.2, 0.2)
    at_alpha, first_step = sim.former_rates(parts, 3, 200, 3000)
    assert at_alpha > 0.05 + 2 * math.sqrt(0.05 * 0.95 / 3000)
    assert first_step > 0.05 / 3 + 2 * math.sqrt(0.05 / 3 * (1 - 0.05 / 3) / 3000)


def seed_documents(tables: dict[str, np.ndarray]) -> list[dict[str, dict]]:
    """Per seed {group: document} with the reference's per-tweet values = the table (the
    baseline's all 0), for the metrics of the verdict's family."""
    seeds, tweets = next(iter(tables.values())).shape
    documents = []
    for s in range(seeds):
        doc = {"seed": s, "prompt_ids": [f"t{i}" for i in range(tweets)], "systems": {
            REF: {m: {"per_prompt": tables[m][s].tolist()} for m in FAMILY},
            BASE: {m: {"per_prompt": [0.0] * tweets} for m in FAMILY}}}
        documents.append({"passk": doc})
    return documents


def test_the_power_figure_is_a_simulation_of_the_rule_the_verdict_runs() -> None:
    """A run's power block (`final_test_power`) against an independent simulation: studies
    drawn from the block's own components, each judged by `significance.detect` (the
    verdict's dict path: pooled tests, Holm, sign agreement). The two rates agree within two
    Monte Carlo SE of their difference."""
    rng = np.random.default_rng(5)
    truth = sim.Components(0.02, 0.15, 0.2)
    pilot = {m: sim.draw(rng, truth, 0.0, 1, 3, 30)[0] for m in FAMILY}
    verdict = {"rows": [{"metric": m} for m in FAMILY], "passk_metric": "pass@10",
               "reference": REF, "matched": BASE}
    block = final_test_power(seed_documents(pilot), verdict, replicates=2000)
    components = [sim.Components(**block["components"][m]) for m in FAMILY]
    settings = section("evaluation", {"bootstrap_samples": 100, "permutation_samples": 100})
    hits, replicates = 0, 400
    for _ in range(replicates):
        tables = {m: sim.draw(rng, c, 0.05 if m == "pass@10" else 0.0, 1, 3, 30)[0]
                  for m, c in zip(FAMILY, components, strict=True)}
        evidence = Evidence({"seeds": [0, 1, 2]}, [], seed_documents(tables), settings)
        hits += bool(detect(evidence, list(FAMILY), REF, BASE)[1]["detectable"])
    rate = hits / replicates
    se = math.sqrt(block["power_se"] ** 2 + rate * (1 - rate) / replicates)
    assert abs(rate - block["power"]) <= 2 * se, (rate, block["power"], se)
    assert 0.0 < block["power"] < 1.0 and block["level"] <= 0.05 + 2 * block["level_se"]
    text = describe_power(block)
    assert f"power {block['power']:.2f}" in text and "3 seeds x 30 test tweets" in text


def test_the_detectable_difference_has_the_target_power() -> None:
    parts = [sim.Components(0.0, 0.1, 0.2)] * 3
    delta = sim.detectable_delta(parts, 1, 3, 100, 1000)
    assert delta is not None
    assert sim.power(parts, 1, delta, 3, 100, 1000) >= 0.8
    assert sim.power(parts, 1, delta - 0.01, 3, 100, 1000) < 0.8
    assert sim.detectable_delta([sim.Components(5.0, 5.0, 5.0)] * 3, 1, 3, 10, 200) is None


def test_main_prints_and_writes_the_level_table(tmp_path, capsys) -> None:
    page = tmp_path / "statistics.md"
    page.write_text(f"# Title\n\n{BEGIN}\nold\n{END}\n\nafter\n", encoding="utf-8")
    assert main(["--simulate", "--seeds", "3", "--tweets", "20", "--seed-sd", "0", "0.1",
                 "--replicates", "200", "--write", str(page)]) == 0
    printed = capsys.readouterr().out
    text = page.read_text(encoding="utf-8")
    assert "old" not in text and text.endswith(f"{END}\n\nafter\n")
    assert printed.strip() in text and text.count("| 3 |") == 2
    assert "200 simulated studies per row" in text
    with pytest.raises(ValueError, match="no <!-- simulation:begin"):
        (tmp_path / "bare.md").write_text("nothing", encoding="utf-8")
        main(["--simulate", "--seeds", "3", "--tweets", "10", "--seed-sd", "0",
              "--replicates", "50", "--write", str(tmp_path / "bare.md")])

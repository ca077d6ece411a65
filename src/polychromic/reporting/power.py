"""Power and level of the study's primary rule, by simulating the rule itself.

Why: a power figure is only as good as its match to the test that is run. The former figure
came from a z approximation of a different rule (no small-sample reference, no Holm step-down,
no sign agreement) and promised more power than the rule had. Here every figure is a Monte
Carlo run of the actual rule (`simulation.simulate`: the crossed test of every metric of the
verdict's family, Holm over the family, the seeds' sign agreement) at variance components that
are given or estimated from a run (`simulation.Components.from_matrix`), reported with its
Monte Carlo standard error.

- `final_test_power` redoes it for a finished run's own verdict: the components of each metric
  of its family from the run's seeds x tweets tables, the power for a pass@k difference of
  `delta` (0.05) with the other metrics at 0, the difference detected with power 0.8, the
  power at more seeds or tweets, and the rule's false-positive rate at these components. The
  aggregate stores it (`power`); the results pages and the paper read it from there.
- `level_table` is the check of the rule's level: the false-positive rate of the crossed test
  at alpha and at alpha / 3 (Holm's first step) and of the whole rule, for 3 and 5 seeds and
  several seed standard deviations, next to the former Satterthwaite t's, and the rule's power.
  `make docs` writes it into docs/statistics.md.

`python -m polychromic.reporting.power --simulate` prints the level table (defaults: 200
tweets, tweet and interaction sd 0.2); `--results results` uses a run's own components and
design instead; `--seeds`, `--tweets`, `--delta`, `--replicates` and the three `--*-sd` set the
design; `--write FILE` puts the table between the file's `<!-- simulation:begin -->` and
`<!-- simulation:end -->` markers.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from polychromic.io import markers, replace_block
from polychromic.reporting import simulation as sim
from polychromic.reporting.significance import pooled_table

REPLICATES = 2000
MDE_REPLICATES = 1000
SEED_SDS = (0.0, 0.05, 0.1, 0.2)
BEGIN, END = markers("simulation")


def final_test_power(seed_documents: Sequence[dict[str, Any]], verdict: dict[str, Any],
                     alpha: float = sim.ALPHA, delta: float = 0.05, target: float = 0.8,
                     replicates: int = REPLICATES, seed: int = 0) -> dict[str, Any]:
    """The power block of a run (module docstring) for its verdict's comparison."""
    metrics = [row["metric"] for row in verdict["rows"]]
    index = metrics.index(verdict["passk_metric"])
    tables = [pooled_table(seed_documents, metric, verdict["reference"], verdict["matched"])
              for metric in metrics]
    components = [sim.Components.from_matrix(table) for table in tables]
    seeds, tweets = tables[index].shape
    result = sim.simulate(components, [delta if j == index else 0.0 for j in range(len(metrics))],
                          seeds, tweets, replicates, seed, alpha)
    null = sim.simulate(components, [0.0] * len(metrics), seeds, tweets, replicates, seed + 1,
                        alpha)
    margin = verdict.get("match_tolerance")
    pass1 = metrics.index("pass@1") if "pass@1" in metrics else None
    equivalence = None
    if margin and pass1 is not None:
        rate = sim.equivalence_rate(components[pass1], margin, seeds, tables[pass1].shape[1],
                                    replicates, seed)
        equivalence = {"margin": margin, "rate": rate,
                       "se": (rate * (1 - rate) / replicates) ** 0.5}
    designs = [{"seeds": s, "tweets": t,
                "power": sim.power(components, index, delta, s, t, replicates, seed, alpha)}
               for s, t in dict.fromkeys([(seeds, 2 * tweets), (5, tweets), (10, tweets)])
               if (s, t) != (seeds, tweets)]
    return {"method": "simulation of the primary rule (crossed test of every metric of the "
                      "verdict's family, Holm, the seeds' sign agreement) at the run's own "
                      "variance components (reporting.simulation)",
            "metric": metrics[index], "metrics": metrics, "reference": verdict["reference"],
            "baseline": verdict["matched"], "seeds": seeds, "prompts": tweets,
            "components": {m: c.as_dict() for m, c in zip(metrics, components, strict=True)},
            "delta": delta, "alpha": alpha, "family": len(metrics), "target_power": target,
            "power": result.detectable[index], "power_se": result.se(result.detectable[index]),
            "level": null.any_detectable, "level_se": null.se(null.any_detectable),
            "detectable_delta": sim.detectable_delta(components, index, seeds, tweets,
                                                     MDE_REPLICATES, target, seed, alpha),
            "designs": designs, "equivalence": equivalence, "replicates": replicates,
            "simulation_seed": seed}


def describe_power(result: dict[str, Any]) -> str:
    """`final_test_power` in a few sentences, for the results page."""
    parts = result["components"][result["metric"]]
    mde = result["detectable_delta"]
    more = "; ".join(f"{d['power']:.2f} with {d['seeds']} seeds x {d['tweets']} tweets"
                     for d in result["designs"])
    return (f"Simulated ({result['replicates']} studies) from this run's own variance "
            f"components of the {result['metric']} difference ({result['reference']} minus "
            f"{result['baseline']}: seed sd {parts['seed']:.3f}, tweet sd {parts['tweet']:.3f}, "
            f"interaction sd {parts['interaction']:.3f}; {result['seeds']} seeds x "
            f"{result['prompts']} test tweets), the primary rule (Holm over "
            f"{result['family']}, alpha {result['alpha']:g}) has power {result['power']:.2f} "
            f"(Monte Carlo SE {result['power_se']:.3f}) for a difference of "
            f"{result['delta']:g}, and detects "
            + (f"{mde:.3f} with power {result['target_power']:g}" if mde is not None
               else f"no difference up to 1 with power {result['target_power']:g}")
            + f". Its false-positive rate at these components is {result['level']:.3f} "
            f"(SE {result['level_se']:.3f}). Power for {result['delta']:g} elsewhere: {more}."
            + equivalence_sentence(result.get("equivalence"))
            + " (docs/statistics.md, `python -m polychromic.reporting.power --simulate`)")


def equivalence_sentence(block: dict[str, Any] | None) -> str:
    """How often this design shows equivalence in pass@1 when the two are equal."""
    if not block:
        return ""
    return (f" With equal pass@1, the equivalence test (90 % interval inside "
            f"±{block['margin']:g}) holds in {block['rate']:.2f} of simulated studies of this "
            f"design (SE {block['se']:.3f}): below that, an unmatched verdict says more about "
            "the design than about the systems.")


def level_rows(seeds: Sequence[int], tweets: int, tweet_sd: float, interaction_sd: float,
               seed_sds: Sequence[float], delta: float, replicates: int,
               alpha: float = sim.ALPHA, with_power: bool = True) -> list[dict[str, Any]]:
    """Per (seeds, seed sd): the crossed test's and the former Satterthwaite t's rejection
    rates under the null at alpha and alpha / 3, the rule's familywise false-positive rate
    (three null metrics) and (`with_power`) its power for `delta` on one metric."""
    rows = []
    for n_seeds in seeds:
        for seed_sd in seed_sds:
            parts = [sim.Components(seed_sd, tweet_sd, interaction_sd)] * 3
            null = sim.simulate(parts, [0.0] * 3, n_seeds, tweets, replicates, 1, alpha)
            former = sim.former_rates(parts[0], n_seeds, tweets, replicates, 1, alpha)
            rows.append({"seeds": n_seeds, "seed_sd": seed_sd, "tweets": tweets,
                         "test_alpha": null.test_alpha, "test_first_step": null.test_first_step,
                         "rule": null.any_detectable, "former_alpha": former[0],
                         "former_first_step": former[1],
                         "power": sim.power(parts, 1, delta, n_seeds, tweets, replicates, 2,
                                            alpha) if with_power else None,
                         "replicates": replicates})
    return rows


def level_table(rows: list[dict[str, Any]], tweet_sd: float, interaction_sd: float,
                delta: float, alpha: float = sim.ALPHA) -> str:
    """`level_rows` as Markdown, with a line saying how it was made."""
    def rate(value: float, n: int) -> str:
        return f"{value:.3f} ± {np.sqrt(value * (1 - value) / n):.3f}"

    lines = [f"| seeds | seed sd | test p < {alpha:g} | test p < {alpha:g}/3 | rule, any of 3 "
             f"| former t p < {alpha:g} | former t p < {alpha:g}/3 | rule's power for "
             f"{delta:g} |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        n = row["replicates"]
        lines.append(f"| {row['seeds']} | {row['seed_sd']:g} | {rate(row['test_alpha'], n)} | "
                     f"{rate(row['test_first_step'], n)} | {rate(row['rule'], n)} | "
                     f"{rate(row['former_alpha'], n)} | {rate(row['former_first_step'], n)} | "
                     f"{rate(row['power'], n)} |")
    first = rows[0]
    return ("\n".join(lines) + f"\n\n*Written by `python -m polychromic.reporting.power "
            f"--simulate`: {first['replicates']} simulated studies per row (± one Monte Carlo "
            f"SE), {first['tweets']} test tweets, tweet sd {tweet_sd:g}, interaction sd "
            f"{interaction_sd:g}; the rule's family is three metrics drawn independently, its "
            f"power for a difference of {delta:g} on one of them with the others at 0.*")


def run_components(results: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the aggregate's verdict, every seed's metric documents) of a results folder."""
    from polychromic.contract import AGGREGATE_FILES
    from polychromic.io import read_json
    from polychromic.reporting.aggregate import load_seed

    aggregated = read_json(results / "evaluation" / AGGREGATE_FILES["aggregated"])
    verdict = aggregated.get("verdict") or {}
    if not verdict.get("available"):
        raise ValueError(f"{results}: the aggregate has no verdict to size")
    seeds = aggregated["seeds"]
    return verdict, [load_seed(results / "evaluation" / f"seed_{seed}") for seed in seeds]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m polychromic.reporting.power",
        description="The primary rule's false-positive rate and power, by simulation.")
    parser.add_argument("--simulate", action="store_true",
                        help="simulate the rule (the only mode; kept for clarity)")
    parser.add_argument("--results", type=Path, help="size from this run's own components")
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 5])
    parser.add_argument("--tweets", type=int, default=200)
    parser.add_argument("--seed-sd", type=float, nargs="+", default=list(SEED_SDS))
    parser.add_argument("--tweet-sd", type=float, default=0.2)
    parser.add_argument("--interaction-sd", type=float, default=0.2)
    parser.add_argument("--delta", type=float, default=0.05)
    parser.add_argument("--replicates", type=int, default=10000)
    parser.add_argument("--write", type=Path, help="write the table between markers here")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.results is not None:
        verdict, documents = run_components(args.results)
        print(describe_power(final_test_power(documents, verdict, delta=args.delta,
                                              replicates=args.replicates)))
        return 0
    rows = level_rows(args.seeds, args.tweets, args.tweet_sd, args.interaction_sd,
                      args.seed_sd, args.delta, args.replicates)
    block = level_table(rows, args.tweet_sd, args.interaction_sd, args.delta)
    if args.write is not None:
        replace_block(args.write, "simulation", block)
    print(block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The sampling search on validation: each system's temperature, bisected until its validation
pass@1 meets the baseline's.

Why: a hand-made grid of temperatures is a choice a researcher can revise after seeing a
result (a first run's verdicts were all "unmatched", so temperatures were added between the
grid's points). A search fixed in the config before the run makes the choice mechanical: its
rule, bounds and budget are all the researcher sets, and it runs to the end before any test
generation exists (the test split's `generate` jobs read `selection.json`, which the search's
last round writes; nothing in the search reads a test file).

The rounds (`results/selection/search/round_{r}.json`, one Snakemake checkpoint each):

- round 0 samples every configured system on the validation split at generation's settings;
  the target is the baseline system's validation pass@1 there ("without losing single-answer
  quality": the quality of plain LoRA as practised);
- after each round the judge scores the round's candidates (`selection.validation_passk`: the
  share of passing replies per tweet, averaged over tweets and seeds), and each system still
  searching gets its next temperature from `propose`;
- `propose`: pass@1 falls as the temperature rises, so a gap = pass@1 - target > 0 asks for a
  hotter setting. Among the temperatures tried, two neighbours whose gaps have opposite signs
  bracket the target (the pair next to the best candidate when there are several), and the
  next candidate is where the line through them meets the target: regula falsi with the
  Illinois modification (Dowell and Jarratt 1971, "A modified regula falsi method for
  computing the root of an equation", BIT 11: 168-174), kept a tenth of the bracket away from
  either end and rounded to 0.001. It never leaves the bracket, like bisection, and on a
  smooth pass@1 curve it needs far fewer candidates. Without a bracket, the search tries the
  bound in the gap's direction (`search.high` or `search.low`) once. It stops when a candidate
  is within `stop_within` of the target, when the bracket is narrower than `min_step`, when
  the bound does not reach the target either ("out of reach"), or when `max_candidates` are
  spent.
  The baseline system stops at round 0: it is the target;
- each system takes its candidate closest to the target (ties: the earlier one).

The state file records every candidate tried (round, temperature, validation pass@1 and
pass@k, per seed and per tweet) and, per system, why its search stopped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from polychromic.settings import EvaluationSettings, GenerationSettings, SearchSettings
from polychromic.systems import System, parse_system, temperature_system

WITHIN, NARROW, OUT_OF_REACH, BUDGET, TARGET = (
    "within", "narrow", "out of reach", "budget", "target")
REASONS = {
    WITHIN: "a candidate's validation pass@1 is within stop_within of the target",
    NARROW: "the temperatures bracketing the target are closer than min_step",
    OUT_OF_REACH: "the search's bound does not reach the target either",
    BUDGET: "max_candidates are spent",
    TARGET: "the baseline system at generation's settings is the target",
}


def propose(tried: Sequence[Mapping[str, Any]], target: float,
            search: SearchSettings) -> tuple[float | None, str | None]:
    """(next temperature, None), or (None, why the search stops), from the candidates
    `tried` ({temperature, pass@1}, in the order tried) and the target pass@1 (module
    docstring)."""
    points = sorted((float(c["temperature"]), float(c["pass@1"]) - target) for c in tried)
    if any(abs(gap) <= search.stop_within for _, gap in points):
        return None, WITHIN
    if len(tried) >= search.max_candidates:
        return None, BUDGET
    best = min(range(len(points)), key=lambda i: abs(points[i][1]))
    brackets = [i for i in range(len(points) - 1)
                if (points[i][1] > 0) != (points[i + 1][1] > 0)]
    if not brackets:
        bound = search.high if points[best][1] > 0 else search.low
        if any(abs(t - bound) < 1e-9 for t, _ in points):
            return None, OUT_OF_REACH
        return float(bound), None
    i = min(brackets, key=lambda j: min(abs(j - best), abs(j + 1 - best)))
    (low, gap_low), (high, gap_high) = points[i], points[i + 1]
    if high - low < search.min_step:
        return None, NARROW
    gap_low, gap_high = illinois(tried, target, (low, gap_low), (high, gap_high))
    step = (high - low) * gap_low / (gap_low - gap_high)
    guard = 0.1 * (high - low)  # never closer to an end than a tenth of the bracket
    proposal = round(min(max(low + step, low + guard), high - guard), 3)
    if any(abs(t - proposal) < 1e-9 for t, _ in points):
        return None, NARROW
    return proposal, None


def illinois(tried: Sequence[Mapping[str, Any]], target: float, low: tuple[float, float],
             high: tuple[float, float]) -> tuple[float, float]:
    """The bracket's two gaps for the next interpolation: the Illinois rule (Dowell and Jarratt
    1971) halves the gap of the end that the last two candidates both left standing, so that
    a curved pass@1 does not pin the interpolation to one side."""
    gaps = [low[1], high[1]]
    if len(tried) >= 2:
        last, before = (float(c["pass@1"]) - target > 0 for c in tried[-2:][::-1])
        newest = float(tried[-1]["temperature"])
        if last == before and newest in (low[0], high[0]):
            stale = 1 if newest == low[0] else 0
            gaps[stale] /= 2.0
    return gaps[0], gaps[1]


def candidate_name(system: str, temperature: float, generation: GenerationSettings) -> str:
    """The system itself at generation's temperature, else `<system>@t<temperature>`."""
    if abs(temperature - generation.temperature) < 1e-12:
        return system
    return temperature_system(system, temperature)


def start(systems: Mapping[str, System], settings: EvaluationSettings,
          seeds: Sequence[int]) -> dict[str, Any]:
    """Round 0's state: every configured system proposed at generation's settings."""
    search = settings.selection.active_search
    if search is None:
        raise ValueError("evaluation.selection.search.enabled is false: there is nothing to "
                         "search")
    names = [name for name, system in systems.items() if system.base_system is None]
    if settings.baseline_system not in names:
        raise ValueError(f"the baseline system {settings.baseline_system!r} is not configured")
    return {"round": 0, "seeds": [int(seed) for seed in seeds],
            "target_system": settings.baseline_system, "target_pass@1": None,
            "search": {key: getattr(search, key) for key in search.__dataclass_fields__},
            "proposals": {name: name for name in names},
            "systems": {name: {"tried": [], "stopped": None} for name in names}}


def advance(state: dict[str, Any], measured: Mapping[str, Mapping[str, Any]],
            settings: EvaluationSettings, generation: GenerationSettings) -> dict[str, Any]:
    """The next round's state: the proposed candidates' validation measures (`measured`,
    {candidate: validation_passk entry}) appended to their systems, then the next proposal
    (or the reason to stop) of every system still searching."""
    search = settings.selection.search
    missing = sorted(set(state["proposals"].values()) - set(measured))
    if missing:
        raise ValueError(f"round {state['round']}: no validation measures of {missing}")
    round_ = state["round"]
    systems = {name: {"tried": list(entry["tried"]), "stopped": entry["stopped"]}
               for name, entry in state["systems"].items()}
    for name, candidate in state["proposals"].items():
        temperature = parse_system(candidate).overrides.temperature
        systems[name]["tried"].append({
            "name": candidate, "round": round_,
            "temperature": generation.temperature if temperature is None else temperature,
            **measured[candidate]})
    target = state["target_pass@1"]
    if target is None:
        target = measured[state["proposals"][state["target_system"]]]["pass@1"]
        systems[state["target_system"]]["stopped"] = TARGET
    proposals = {}
    for name, entry in systems.items():
        if entry["stopped"] is not None:
            continue
        temperature, stop = propose(entry["tried"], target, search)
        if stop is not None:
            entry["stopped"] = stop
        else:
            proposals[name] = candidate_name(name, temperature, generation)
    return {**state, "round": round_ + 1, "target_pass@1": target, "proposals": proposals,
            "systems": systems}


def chosen(entry: Mapping[str, Any], target: float) -> dict[str, Any]:
    """A system's tried candidate closest to the target (ties: the earlier)."""
    return min(entry["tried"], key=lambda c: abs(c["pass@1"] - target))

"""The paper's generated prose: abstract, finding paragraph, limitations and the conclusion's
first sentence, every number and every adjective chosen from the results.

Nothing here is written ahead of the numbers. The words come from the verdict block of
`aggregated_results.json` (`reporting.verdict`: better, worse, mixed, no detectable difference,
inconclusive (unmatched | degenerate), void), whose rule (Holm-adjusted crossed-random-effects
test, every seed of one sign) decided them; the sentences here only choose the wording for that
word and print its numbers with their 95 % CIs. Where the aggregate has no verdict the abstract
says so instead of inventing one.

`limitations(...)` assembles the limitations paragraph from the pipeline's own warnings: the
verdict's and every objective comparison's warnings and non-finding reasons (unmatched
temperatures, zero adapters, degenerate metrics, void comparisons), a testbed without room, a judge
that is also a training reward, a synthetic corpus (the release's card says so), the demo model's
nature and its stance-balanced pretraining, the power of the final test, the pass threshold as
calibrated (the aggregate's `calibration`), and the limits that hold for every run (a baseline
matched on the test split without a search, the similarity-threshold pass). A synthetic corpus
is also named in the title, the abstract and the Data paragraph (`title_note`,
`origin_sentence`). `expected_warnings` lists the warnings of the artefacts alone, so that
the checklist can confirm each of them reached the paper (`reporting.checklist`).

Strings returned are plain text: the LaTeX environment escapes them when they are printed.
"""

from __future__ import annotations

from typing import Any

from polychromic.reporting.verdict import PHRASES, fmt

QUESTION = ("Does fine-tuning a language model with a diversity-aware, set-level (polychromic) "
            "objective raise pass@k on tweet replies without losing single-answer quality?")

NON_FINDINGS = ("inconclusive (unmatched)", "inconclusive (degenerate)", "void")

# a verdict word as the predicate of a sentence about one system (no opponent named)
PREDICATES = {"better": "is better", "worse": "is worse",
              "mixed": "is better on one measure and worse on another",
              "no detectable difference": "shows no detectable difference"}


def with_ci(row: dict[str, Any]) -> str:
    """`+0.008 (95% CI [-0.034, +0.050])` for a verdict row."""
    low, diff, high = (fmt(row.get(key), signed=True)
                       for key in ("ci_low", "diff", "ci_high"))
    return f"{diff} (95% CI [{low}, {high}])"


def row_of(block: dict[str, Any], metric: str) -> dict[str, Any] | None:
    """The row of `metric` in a verdict block, or None."""
    return next((row for row in block.get("rows") or [] if row.get("metric") == metric), None)


def detect_word(row: dict[str, Any]) -> str:
    """`detectably lower` / `detectably higher` / `no detectable difference`."""
    if not row.get("detectable"):
        return "no detectable difference"
    return "detectably " + ("higher" if (row.get("diff") or 0) > 0 else "lower")


def finding_sentence(verdict: dict[str, Any]) -> str:
    """The reference objective's finding against its matched baseline, with its CIs."""
    if not verdict.get("available"):
        return f"The comparison could not be computed: {verdict.get('reason')}."
    word, ref = verdict["verdict"], verdict["reference"]
    rows = [row for row in verdict.get("rows") or [] if row.get("metric") != "pass@1"]
    numbers = "; ".join(f"{row['label']} {with_ci(row)}" for row in rows)
    numbers = f": {numbers}." if numbers else "."
    if word in ("inconclusive (degenerate)", "void"):
        return (f"The comparison of {ref} with the baseline yields no finding ({word}): "
                f"{verdict.get('reason')}.")
    if word == "inconclusive (unmatched)":
        return (f"The systems could not be matched in pass@1 on the test tweets, so the "
                f"comparison of {ref} with the baseline is inconclusive (unmatched){numbers}")
    at = ("At matched pass@1" if verdict.get("matched_on") == "val"
          else "Against the temperature-matched baseline")
    return f"{at}, {ref} {PHRASES.get(word, word)} the baseline ({verdict['matched']}){numbers}"


def quality_sentence(verdict: dict[str, Any], comparisons: list[dict[str, Any]]) -> str:
    """The cost in single-answer quality: pass@1 at the chosen sampling and the greedy reply's
    lexical quality (the primary rule's records, as the results table marks them)."""
    parts = []
    pass1 = row_of(verdict, "pass@1") if verdict.get("available") else None
    if pass1 is not None:
        parts.append(f"pass@1 differs by {with_ci(pass1)}, {detect_word(pass1)}")
    for item in comparisons:
        if item.get("metric_kind") == "quality":
            how = {"better": "detectably better", "worse": "detectably worse",
                   "none": "no detectable difference"}.get(item["direction"], "not tested")
            parts.append(f"the greedy reply's {item['label']} by {item['raw_diff']} ({how})")
    if not parts:
        return "No single-answer quality metric could be compared."
    return "In single-answer quality, " + "; ".join(parts) + "."


def diversity_sentence(block: dict[str, Any] | None) -> str:
    """The diversity term's own effect: the reference against the same objective without the
    term (`evaluation.diversity_ablation`), by the verdict's rule; '' without that system."""
    if not block or not block.get("available"):
        return ""
    word, ref, other = block["verdict"], block["reference"], block["matched"]
    rows = [row for row in block.get("rows") or [] if row.get("metric") != "pass@1"]
    numbers = "; ".join(f"{row['label']} {with_ci(row)}" for row in rows)
    if word in ("inconclusive (degenerate)", "void", "inconclusive (unmatched)"):
        return (f"Against {other}, the same objective without its diversity term, the "
                f"comparison gives no finding ({word})" + (f": {numbers}." if numbers else "."))
    return (f"Against {other}, the same objective without its diversity term, at matched "
            f"pass@1, {ref} {PHRASES.get(word, word)} it ({numbers}): this, not the "
            "comparison with plain LoRA, is the diversity term's own effect.")


def objectives_sentence(blocks: dict[str, Any], reference: str) -> str:
    """One clause per further LoRA system: its verdict against its matched baseline."""
    others = [(name, block) for name, block in blocks.items()
              if name != reference and block.get("available")]
    if not others:
        return ""
    clauses = [f"{name} {PREDICATES.get(block['verdict'], 'is ' + block['verdict'])}"
               for name, block in others]
    return ("Of the other LoRA systems, each against its matched baseline, "
            + "; ".join(clauses) + ".")


def testbed_sentence(testbed: dict[str, Any]) -> str:
    """The testbed check: the baseline's pass@1 minus each untuned system's, and its word."""
    rows = testbed.get("rows") or []
    if not testbed.get("available") or not rows:
        return ""
    parts = [f"minus {row['system']}'s {'is ' if index == 0 else ''}{with_ci(row)}"
             for index, row in enumerate(rows)]
    where = "On the validation split, " if testbed.get("split") == "val" else ""
    room = "fine-tuning has room" if testbed.get("room") else "the testbed shows no detectable room"
    baseline = testbed.get("baseline", "the baseline")
    return f"{where}{baseline}'s pass@1 " + ", ".join(parts) + f": {room}."


def title_note(context: dict[str, Any]) -> str:
    """A second title line that says the corpus is synthetic (none when the title says so)."""
    synthetic = (context.get("origin") or {}).get("synthetic")
    if not synthetic or "synthetic" in str(context.get("title", "")).lower():
        return ""
    return "A study on a synthetic tweet--reply corpus"


def origin_sentence(origin: dict[str, Any]) -> str:
    """The Data paragraph's first sentence: where the corpus comes from."""
    if origin.get("demo"):
        return ("The corpus is synthetic, not real Twitter data: the pipeline's demo generator "
                "(polychromic.data.demo) wrote every tweet and reply. Each tweet is about one "
                "of a fixed set of topics; each reply takes one of four stances (agree, "
                "counterpoint, question, anecdote) with its own wording, a tweet's replies "
                "take one or two of them, agree dominates, and the tweet does not say which: a "
                "controlled testbed in which varied replies pay off at large k.")
    if origin.get("synthetic"):
        return ("The corpus is synthetic, not real Twitter data: its tweets and replies were "
                "generated (data.synthetic), not collected from any platform.")
    sources = ", ".join(origin.get("sources") or []) or "the configured files"
    return (f"The pairs were read from {sources} (data.raw), then validated and curated by the "
            "pipeline; the dataset card of the release lists every curation filter and the "
            "pairs it dropped.")


def model_phrase(model_path: str | None) -> str:
    """`the model SmolLM2-135M-Instruct (Apache-2.0)` for a known name, `the model <folder
    name>` (with its card's license) for a folder, else the demo model."""
    from polychromic.models.known import model_phrase as phrase

    return phrase(model_path)


def scope_sentence(context: dict[str, Any], power: dict[str, Any] | None) -> str:
    """What the finding is about (the model, the seeds, the tweets), then the power."""
    verdict = context["verdict"]
    tweets = verdict.get("tweets") if verdict.get("available") else None
    synthetic = (context.get("origin") or {}).get("synthetic")
    unknown = ([] if context.get("model_path") else ["larger models"]) + (
        ["real tweets"] if synthetic else [])
    text = (f"These results hold for {model_phrase(context.get('model_path'))}, "
            f"{len(context['seeds'])} seeds" + (f" and {tweets} test tweets" if tweets else "")
            + (" of a synthetic corpus" if synthetic else "")
            + (f", and say nothing about {' or '.join(unknown)}" if unknown else "") + ".")
    if power and power.get("detectable_delta") is not None:
        text += (f" The final test detects a {power['metric']} difference of "
                 f"{power['detectable_delta']:.3f} with power {power['target_power']:g}.")
    return text


def setup_sentence(context: dict[str, Any]) -> str:
    """The setup in one line: model, data, objectives, seeds, samples, judge, protocol."""
    train = next((row for row in context["splits"] if row["name"] == "train"), None)
    synthetic = "synthetic " if (context.get("origin") or {}).get("synthetic") else ""
    pairs = f" on {train['pairs']} {synthetic}tweet-reply pairs" if train else ""
    objectives = context.get("objective_names") or []
    named = (f"{len(objectives)} objective{'s' if len(objectives) != 1 else ''} "
             f"({', '.join(objectives)})")
    n = (context.get("generation") or {}).get("num_samples")
    judge = f", judged by {context['judge']}" if context.get("judge") else ""
    never = ", an encoder training never uses" if context.get("judge") and \
        not context.get("judge_is_reward") else ""
    protocol = (" Every sampling setting is chosen on the validation split to match the "
                "baseline's pass@1." if context.get("selection") else "")
    return (f"We fine-tune {model_phrase(context.get('model_path'))} with LoRA{pairs} under "
            f"{named} over {len(context['seeds'])} seeds, and sample {n} replies per test "
            f"tweet{judge}{never}.{protocol}")


def abstract(context: dict[str, Any], power: dict[str, Any] | None) -> str:
    """The abstract (about 150-220 words): question, setup, finding with CIs, the cost in
    single-answer quality, further objectives, the testbed, the scope."""
    sentences = [QUESTION, setup_sentence(context), finding_sentence(context["verdict"]),
                 quality_sentence(context["verdict"], context["comparisons"]),
                 objectives_sentence(context["objective_comparisons"], context["reference"]),
                 testbed_sentence(context["testbed"]), scope_sentence(context, power)]
    return " ".join(sentence for sentence in sentences if sentence)


def conclusion_first(context: dict[str, Any]) -> str:
    """The conclusion's first sentence: the answer to the question, from the verdict."""
    verdict = context["verdict"]
    if not verdict.get("available"):
        return f"This study reached no answer: {verdict.get('reason')}."
    word, ref = verdict["verdict"], verdict["reference"]
    passk = row_of(verdict, verdict.get("passk_metric") or "")
    if word in NON_FINDINGS:
        return (f"This study gives no answer to its question: the comparison of {ref} with "
                f"the baseline is {word}.")
    numbers = f" ({verdict['passk_metric']} {with_ci(passk)})" if passk else ""
    at = ("at matched pass@1" if verdict.get("matched_on") == "val"
          else "at the baseline sampling closest to its pass@1")
    return (f"On this testbed, {ref} {PHRASES.get(word, word)} plain LoRA fine-tuning "
            f"{at}{numbers}.")


def expected_warnings(aggregated: dict[str, Any]) -> list[str]:
    """The warnings and reasons of the artefacts that limit the findings: the verdict's and
    every objective comparison's warnings and non-finding reasons, why a comparison or the
    testbed check could not be computed, and a testbed without room (deduplicated, in order)."""
    found: list[str] = []
    blocks = [aggregated.get("verdict") or {"available": False,
                                            "reason": "the aggregate has no verdict block"},
              *(aggregated.get("objective_comparisons") or {}).values()]
    for block in blocks:
        texts = list(block.get("warnings") or []) if block.get("available") else []
        if (not block.get("available") or block.get("verdict") in NON_FINDINGS) \
                and block.get("reason"):
            texts.append(block["reason"])
        found += [text for text in texts if text not in found]
    testbed = aggregated.get("testbed") or {}
    if not testbed.get("available") and testbed.get("reason"):
        found.append(f"the testbed check could not be computed: {testbed['reason']}")
    elif testbed.get("available") and not testbed.get("room"):
        found.append("the testbed shows no detectable room: baseline LoRA does not beat every "
                     "system without an adapter in pass@1, so what an objective adds cannot be "
                     "read from it")
    return found


def corpus_limits(context: dict[str, Any]) -> list[str]:
    """The limits of a synthetic corpus and of the demo base model (its stance-balanced
    pretraining), from the run's settings and the release's card."""
    origin = context.get("origin") or {}
    items = []
    if origin.get("synthetic"):
        made = ("the demo generator wrote every tweet and reply, with four stances of distinct "
                "wording built in" if origin.get("demo") else "its tweets and replies were "
                "generated, not collected")
        items.append(f"The corpus is synthetic, not real Twitter data: {made}. The findings are "
                     "about this testbed and say nothing yet about real tweets and replies.")
    if not context.get("model_path"):
        items.append("The base model is the pipeline's small demonstration model, pretrained "
                     "here on the training split's texts: the findings are about this testbed, "
                     "not about the large models the question is usually asked of."
                     + (" Its pretraining read the corpus's stance labels to balance the "
                        "replies (every stance as often as the rarest), so that fine-tuning has "
                        "the reply distribution to learn; a real base model brings its own "
                        "prior instead." if origin.get("stance_balanced") else ""))
    return items


def threshold_limit(calibration: dict[str, Any] | None) -> str | None:
    """What the pass threshold is, from the aggregate's calibration record."""
    if not calibration or calibration.get("threshold") is None:
        return None
    value = f"{calibration.get('criterion')} similarity {calibration['threshold']:.3f}"
    if calibration.get("source") != "validation":
        return (f"The pass threshold ({value}) is set in the config "
                "(evaluation.passk.threshold), not calibrated on this corpus.")
    low, high = (list(calibration.get("threshold_ci") or []) + [None, None])[:2]
    interval = (f", 95% CI [{low:.3f}, {high:.3f}] over validation tweets"
                if low is not None and high is not None else "")
    return (f"The pass threshold ({value}{interval}) is calibrated on "
            f"{calibration.get('positives')} validation references, each scored by its best "
            "match among the other references of its own tweet against its best match among "
            "another tweet's: a pass means that a reply reads like a reply to its tweet, not "
            "that it takes a reference's stance or is a good reply.")


def limitations(context: dict[str, Any], aggregated: dict[str, Any],
                power: dict[str, Any] | None) -> list[str]:
    """The limitations paragraph, one item per limit (module docstring). The warnings are
    printed as written (a reason may begin with a system's name, which must not change)."""
    items = [text + ("" if text.endswith(".") else ".") for text in expected_warnings(aggregated)]
    if context.get("judge_is_reward"):
        items.append("The evaluation judge is also a reward model of training, so part of any "
                     "gain in pass@k, coverage and semantic diversity may be built in.")
    if context.get("criterion_is_reward"):
        items.append("The pass criterion, ROUGE-L to the closest reference, is also the training "
                     f"reward of {', '.join(context['criterion_is_reward'])}, so part of any "
                     "gain in pass@k may be built in.")
    items += corpus_limits(context)
    if power and power.get("detectable_delta") is not None:
        items.append(f"The final test ({power['seeds']} seeds, {power['prompts']} test tweets) "
                     f"detects a {power['metric']} difference of "
                     f"{power['detectable_delta']:.3f} with power {power['target_power']:g} "
                     f"and has power {power['power']:.2f} for {power['delta']:g}; smaller "
                     "effects can go unseen.")
    if not context.get("selection") and context["verdict"].get("available"):
        items.append("Without a sampling search on validation (evaluation.selection.search), "
                     "the matched baseline is the sampling variant whose pass@1 on the test "
                     "tweets is closest: a choice made on the test split.")
    threshold = threshold_limit(aggregated.get("calibration"))
    items += [threshold] if threshold else []
    items.append("A reply passes when its similarity to the closest reference reaches a "
                 "threshold under one encoder: a good reply unlike every reference fails, and "
                 "pass@k measures agreement with the references, not usefulness.")
    return items

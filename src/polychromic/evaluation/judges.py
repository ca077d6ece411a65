"""The judges: who decides that a sample passes for its tweet. A registry, like the objectives'
and the metrics'.

Why: pass@k, coverage and useful diversity are only as good as the decision "this reply passes
for this tweet". A judge makes it, per sample, and answers in one shape (`Decisions`):

- `passed`: the sample passes (an empty sample never does);
- `unknown`: the judge cannot tell (it counts as a fail, and is counted on its own);
- `hits`: the reference mode a passing sample hits (coverage counts the distinct ones);
- `scores`: a number behind the decision where the judge has one (None otherwise).

Registered kinds:

- `similarity`: the judge encoder's cosine (or ROUGE-L, or BERTScore: `evaluation.passk.
  criterion`) of the sample to its closest reference reaches the threshold calibrated on
  validation; the mode it hits is its closest reference's;
- `oracle`: the demo corpus's own ground truth. Every demo reply is written from a (topic,
  stance) template, so what a sample says is decided from the generator's wording
  (`polychromic.data.demo.reply_topic_and_stance`), with no encoder: it passes when it names
  the tweet's topic in one of the stances of the tweet's references; a sample that matches no
  template is unknown. It needs the references' stance labels (the demo's raw records carry
  them through to the splits and the generations), so on other data it is unavailable.

`evaluation.judge_kind` names the primary judge (`auto`: the oracle where the data carry the
demo's labels, else similarity); `evaluation.second_judges` lists further readings, reported as
`<kind>_pass@k` next to pass@k. A new kind (an LLM judge, say) is one class with `decide` plus
one `register_judge` call; docs/extending.md shows how.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from polychromic.plugins import Registry

if TYPE_CHECKING:
    from polychromic.evaluation.view import SystemView

AUTO = "auto"


@dataclass(frozen=True)
class Decisions:
    """One judge's decisions on one system's samples, per prompt (module docstring)."""

    passed: list[np.ndarray]  # bool (n,) per prompt
    unknown: list[np.ndarray]  # bool (n,) per prompt
    hits: list[list[Any]]  # per prompt, the mode each sample hits (None unless it passes)
    scores: list[np.ndarray] | None  # float (n,) per prompt, or None

    @property
    def pass_counts(self) -> list[int]:
        return [int(p.sum()) for p in self.passed]


class Judge:
    """The interface of a judge kind: `decide(view)` over one system's generations."""

    kind = ""

    def available(self, records: Sequence[dict[str, Any]]) -> str | None:
        """None when the judge can decide on these generation records, else why not."""
        return None

    def decide(self, view: SystemView) -> Decisions:
        raise NotImplementedError


class SimilarityJudge(Judge):
    """The judge encoder (or ROUGE-L, BERTScore) at its calibrated threshold."""

    kind = "similarity"

    def decide(self, view: SystemView) -> Decisions:
        from polychromic.evaluation import coverage as cov

        passed, hits = [], []
        for sims, texts, emb, refs, labels in zip(
                view.similarities, view.samples, view.sample_embeddings,
                view.reference_embeddings, view.modes, strict=True):
            ok = np.array(cov.passing(sims, texts, view.threshold), dtype=bool)
            closest = cov.closest_references(emb, refs)
            passed.append(ok)
            hits.append([labels[int(c)] if good else None
                         for c, good in zip(closest, ok, strict=True)])
        unknown = [np.zeros(len(p), dtype=bool) for p in passed]
        return Decisions(passed, unknown, hits,
                         [np.asarray(s, dtype=np.float64) for s in view.similarities])


class OracleJudge(Judge):
    """The demo corpus's ground truth (module docstring)."""

    kind = "oracle"

    def available(self, records: Sequence[dict[str, Any]]) -> str | None:
        from polychromic.data import demo

        for record in records:
            stances = record.get("reference_stances") or []
            if not stances or any(s not in demo.STANCES for s in stances):
                return (f"prompt {record.get('prompt_id')} has no demo stance label on every "
                        "reference: the oracle judges only the demo corpus")
            if tweet_topic(record) not in demo.TOPICS:
                return (f"prompt {record.get('prompt_id')} has no demo topic (no topic label, "
                        "and its references name none): the oracle judges only the demo "
                        "corpus")
        return None

    def decide(self, view: SystemView) -> Decisions:
        from polychromic.data import demo

        passed, unknown, hits = [], [], []
        for record in view.records:
            topic = tweet_topic(record)
            stances = set(record["reference_stances"])
            said = [demo.reply_topic_and_stance(text) if text.strip()
                    else (demo.UNKNOWN, demo.UNKNOWN) for text in record["samples"]]
            unknown.append(np.array([demo.UNKNOWN in pair for pair in said], dtype=bool))
            ok = np.array([t == topic and s in stances for t, s in said], dtype=bool)
            passed.append(ok)
            hits.append([s if good else None for (_, s), good in zip(said, ok, strict=True)])
        return Decisions(passed, unknown, hits, None)


def tweet_topic(record: dict[str, Any]) -> str:
    """The tweet's topic: the record's `topic` label, else the one topic its references name."""
    from polychromic.data import demo

    if record.get("topic"):
        return str(record["topic"])
    named = {demo.reply_topic_and_stance(text)[0] for text in record["references"]}
    named.discard(demo.UNKNOWN)
    return named.pop() if len(named) == 1 else demo.UNKNOWN


JUDGES = Registry("judge")


def register_judge(judge: Judge) -> None:
    """Add a judge kind."""
    JUDGES.register(judge.kind, judge)


for _judge in (SimilarityJudge(), OracleJudge()):
    register_judge(_judge)


def resolve_kind(kind: str, records: Sequence[dict[str, Any]]) -> str:
    """The primary judge's kind for these generation records: `auto` is the oracle where it
    is available (the demo's labels), else similarity; a named kind must be available."""
    if kind == AUTO:
        return "oracle" if JUDGES["oracle"].available(records) is None else "similarity"
    if kind not in JUDGES:
        raise ValueError(f"unknown judge kind {kind!r}; known: {', '.join(JUDGES)} or auto")
    why = JUDGES[kind].available(records)
    if why is not None:
        raise ValueError(f"the {kind} judge cannot decide here: {why}")
    return kind


def readings(primary: str, second: Sequence[str], records: Sequence[dict[str, Any]]
             ) -> list[str]:
    """The second judges that can decide on these records, without the primary, in order."""
    return [kind for kind in dict.fromkeys(second)
            if kind != primary and JUDGES[kind].available(records) is None]

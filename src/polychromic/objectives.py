"""The objective registry: each training objective's settings and where its code lives.

An experiment in config names an objective (`experiments.<name>.objective`) and sets its
settings next to it. An objective is registered here with

- a frozen settings dataclass: every field has its default and a one-line `help` (plus the
  bounds the config is checked against), the one place those defaults live;
- the `module:Class` of its implementation, imported only by the `train` rule (torch is heavy,
  and the workflow reads this registry while it builds the DAG);
- a one-line summary for the docs.

The implementation follows the `polychromic.training.objective.Objective` interface. Adding an
objective is one module (its implementation), one registration here (its settings class and a
`register(...)` call) and its tests; docs/extending.md walks through an example.
`python -m polychromic.objectives` prints the settings of every objective as Markdown
(`--page`: the whole page docs/objectives.md, which `make docs` writes).
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from polychromic.plugins import Registry, load


def setting(default: Any, help: str, **bounds: Any) -> Any:  # noqa: A002 - the help text
    """A settings field: its default, a one-line help and JSON-Schema bounds (`minimum`,
    `exclusiveMinimum`, `maximum`, `enum`); `key=` names the config key when it differs from
    the field name (`lambda`, a Python keyword)."""
    return field(default=default, metadata={"help": help, **bounds})


@dataclass(frozen=True)
class SFTSettings:
    """Supervised fine-tuning has no settings of its own (training.* applies to all)."""


@dataclass(frozen=True)
class SampledSettings:
    """What every objective that samples replies and credits them by policy gradient shares
    (polychromic.training.sampled): the sampling, the reward, the advantage normalisation, the
    weights of the CE anchor and of the KL penalty."""

    lambda_: float = setting(1.0, "Weight of the policy-gradient term (0 with ce_weight 1 = "
                             "the baseline).", minimum=0, key="lambda")
    num_samples: int = setting(4, "N, replies sampled per prompt.", minimum=2)
    temperature: float = setting(1.0, "Sampling temperature during training; the "
                                 "log-probabilities of the policy term use the same "
                                 "temperature.", exclusiveMinimum=0)
    top_p: float = setting(1.0, "Nucleus sampling during training: must stay 1 (the policy "
                           "term needs the probabilities of the distribution sampled from).",
                           exclusiveMinimum=0, maximum=1)
    top_k: int = setting(0, "Top-k sampling during training: must stay 0 (off), for the same "
                         "reason.", minimum=0)
    max_new_tokens: int = setting(24, "Length limit of sampled replies; also the constant of "
                                  "the length normalisation.", minimum=1)
    every_n_steps: int = setting(1, "Sample every this many optimizer steps.", minimum=1)
    max_prompts: int = setting(4, "Prompts of the batch that get samples.", minimum=1)
    reward: str = setting("semantic", "Reward of a reply against the references: semantic "
                          "(reward_model cosine) or rougeL.", enum=["semantic", "rougeL"])
    reward_model: str = setting("all-MiniLM-L6-v2", "Sentence encoder of the reward and of the "
                                "diversity (a known name or a local folder); it must differ "
                                "from evaluation.judge.")
    quality_threshold: float | None = setting(
        None, "A sampled reply is good (it counts towards diversity; for passk_training, it "
        "passes; quality_rl only logs good_fraction) only when its reward reaches this, on the "
        "reward's scale: a cosine, or an F1 for rougeL. null: calibrated on the validation "
        "split by the judge's rule (Youden's J over held-out reference pairs) on the reward's "
        "own scale, recorded in run.json (quality_gate); a number fixes it.",
        minimum=0, maximum=1)
    normalize_advantages: bool = setting(True, "Divide advantages by max(their per-prompt "
                                         "std, advantage_std_floor).")
    advantage_std_floor: float = setting(0.01, "The smallest std the advantages are divided "
                                         "by, so near-identical samples keep near-zero "
                                         "advantages.", exclusiveMinimum=0)
    length_normalization: str = setting("constant", "How a reply's token log-probabilities "
                                        "are summed: constant (divided by max_new_tokens, no "
                                        "length bias, as Dr. GRPO) or mean (per-reply mean).",
                                        enum=["constant", "mean"])
    ce_weight: float = setting(1.0, "Weight of the cross-entropy anchor on the reference "
                               "reply; 0 trains by the policy-gradient term alone (pure "
                               "RL).", minimum=0)
    kl_weight: float = setting(0.0, "beta of a KL penalty to the base model on the sampled "
                               "tokens, inside the lambda-weighted term; 0 = off.", minimum=0)
    kl_estimator: str = setting("k3", "The per-token penalty: k3 = exp(q-p) - (q-p) - 1 (as "
                                "GRPO; as a loss its expected gradient is that of KL(ref || "
                                "policy)) or k2 = (p-q)^2 / 2 (expected gradient that of KL("
                                "policy || ref)); p, q: policy and base-model log-probs.",
                                enum=["k3", "k2"])

    def check(self) -> None:
        if self.top_p != 1.0 or self.top_k != 0:
            raise ValueError("top_p must be 1 and top_k 0 during training: the policy term "
                             "takes log-probabilities of the untruncated distribution")
        if self.ce_weight == 0 and self.lambda_ == 0:
            raise ValueError("ce_weight 0 and lambda 0 leave nothing to train")


@dataclass(frozen=True)
class PolychromicSettings(SampledSettings):
    """The polychromic objective (polychromic.training.polychromic)."""

    set_size: int = setting(2, "n, size of the scored subsets, 2 <= n < num_samples.",
                            minimum=2)

    def check(self) -> None:
        super().check()
        if not 2 <= self.set_size < self.num_samples:
            # With set_size == num_samples there is one subset, which holds every sample, so
            # every advantage is exactly 0 and the objective silently reduces to the baseline.
            raise ValueError(f"need 2 <= set_size ({self.set_size}) < num_samples "
                             f"({self.num_samples}); with set_size = num_samples every "
                             "advantage is 0")


@dataclass(frozen=True)
class QualityRLSettings(PolychromicSettings):
    """The ablation `quality_rl` (polychromic.training.polychromic): polychromic's settings,
    keys and defaults, with the diversity factor of the set score off, so that the two
    experiments differ in that factor alone."""


@dataclass(frozen=True)
class DiversityBonusSettings(SampledSettings):
    """A per-sample diversity bonus (polychromic.training.bonus)."""

    diversity_weight: float = setting(1.0, "beta, weight of a reply's quality-gated mean "
                                      "distance to the other replies of its prompt, added to "
                                      "its reward.", minimum=0)


@dataclass(frozen=True)
class PassAtKSettings(SampledSettings):
    """Pass@k training (polychromic.training.passk)."""

    k: int = setting(2, "k of the pass@k whose group advantage is used, 1 <= k < "
                     "num_samples; a reply passes when its reward reaches quality_threshold.",
                     minimum=1)

    def check(self) -> None:
        super().check()
        if not 1 <= self.k < self.num_samples:
            raise ValueError(f"need 1 <= k ({self.k}) < num_samples ({self.num_samples}): "
                             "with k = num_samples every reply of a group that passes at k "
                             "gets the same advantage")


@dataclass(frozen=True)
class Registration:
    name: str
    settings: type
    implementation: str  # "module:Class"
    summary: str


OBJECTIVES = Registry("objective")


def register(name: str, settings: type, implementation: str, summary: str) -> None:
    """Make objective `name` available to `experiments.<x>.objective`."""
    OBJECTIVES.register(name, Registration(name, settings, implementation, summary))


unregister = OBJECTIVES.unregister


register("sft", SFTSettings, "polychromic.training.sft:SFT",
         "cross-entropy of the reference reply, prompt tokens masked (the baseline)")
register("polychromic", PolychromicSettings,
         "polychromic.training.polychromic:PolychromicObjective",
         "SFT plus lambda times a set-level policy-gradient term (Hamid et al. 2025); with "
         "ce_weight 0 the pure set-RL objective")
register("quality_rl", QualityRLSettings,
         "polychromic.training.polychromic:QualityRLObjective",
         "the polychromic objective with its diversity factor off (the set score is the mean "
         "reward, so the advantage is GRPO's group-relative one): the ablation that separates "
         "RL on the quality reward from the diversity term")
register("diversity_bonus", DiversityBonusSettings,
         "polychromic.training.bonus:DiversityBonusObjective",
         "SFT plus lambda times a GRPO-style term whose per-sample reward carries a "
         "quality-gated diversity bonus (the per-sample counterpart of polychromic)")
register("passk_training", PassAtKSettings,
         "polychromic.training.passk:PassAtKObjective",
         "SFT plus lambda times a policy-gradient term with the analytical pass@k group "
         "advantage (Chen et al. 2025)")


def registration(name: str | None) -> Registration:
    return OBJECTIVES.entry(name)


def config_key(item: dataclasses.Field) -> str:
    return item.metadata.get("key", item.name)


def settings_schema(settings: type) -> dict[str, Any]:
    """A JSON Schema of a settings dataclass, from its fields' types and metadata."""
    kinds = {int: "integer", float: "number", bool: "boolean", str: "string"}
    hints = typing.get_type_hints(settings)
    properties = {}
    for item in dataclasses.fields(settings):
        node = {key: value for key, value in item.metadata.items() if key not in ("key", "help")}
        hint = hints[item.name]
        optional = type(None) in typing.get_args(hint)
        base = next(t for t in typing.get_args(hint) if t is not type(None)) if optional \
            else hint
        node["type"] = [kinds[base], "null"] if optional else kinds[base]
        properties[config_key(item)] = node
    return {"type": "object", "additionalProperties": False, "properties": properties}


def _coerce(hint: Any, value: Any) -> Any:
    """An int given for a float (or optional float) field, as a float; anything else as is."""
    floats = hint is float or float in typing.get_args(hint)
    return float(value) if floats and value is not None else value


def build_settings(name: str | None, values: Mapping[str, Any]) -> Any:
    """The settings of objective `name` from an experiment's config entry (without
    `objective`); ValueError naming the key on an unknown key, a wrong type or value."""
    import jsonschema

    cls = registration(name).settings
    validator = jsonschema.Draft202012Validator(settings_schema(cls))
    for error in sorted(validator.iter_errors(dict(values)), key=str):
        where = ".".join(str(part) for part in error.absolute_path)
        raise ValueError(f"{where + ': ' if where else ''}{error.message} (objective {name})")
    kwargs = {item.name: values[config_key(item)] for item in dataclasses.fields(cls)
              if config_key(item) in values}
    hints = typing.get_type_hints(cls)
    kwargs = {key: _coerce(hints[key], value) for key, value in kwargs.items()}
    settings = cls(**kwargs)
    if hasattr(settings, "check"):
        settings.check()
    return settings


def settings_as_config(settings: Any) -> dict[str, Any]:
    """Config keys and values of an objective's settings, every default filled in."""
    return {config_key(item): getattr(settings, item.name)
            for item in dataclasses.fields(settings)}


def implementation(name: str) -> type:
    """The objective's class (imports its module: call it from the train rule only)."""
    return load(registration(name).implementation)


def markdown() -> str:
    """Every objective with its settings (key, default, help) as Markdown, for the docs."""
    lines = []
    for entry in OBJECTIVES.values():
        lines += [f"### `{entry.name}`", "", f"{entry.summary[0].upper()}{entry.summary[1:]}.",
                  f"Implementation: `{entry.implementation}`.", ""]
        items = dataclasses.fields(entry.settings)
        if not items:
            lines += ["No settings of its own.", ""]
            continue
        lines += ["| key | default | meaning |", "|---|---|---|"]
        lines += [f"| `{config_key(item)}` | `{'null' if item.default is None else item.default}` "
                  f"| {item.metadata['help']} |" for item in items]
        lines.append("")
    return "\n".join(lines)


def page() -> str:
    """docs/objectives.md: every registered objective and its settings."""
    intro = ("Generated from the objective registry (`src/polychromic/objectives.py`) by "
             "`make docs`; do not edit by hand. An experiment names an objective and sets these "
             "keys next to it (`experiments.<name>` in the config); unset keys take the "
             "defaults below.")
    return f"# Objectives\n\n{intro}\n\n" + markdown()


if __name__ == "__main__":
    sys.stdout.write(page() if "--page" in sys.argv[1:] else markdown())

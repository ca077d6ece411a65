"""The whole study's settings: every section, the experiments and the systems, checked together.

`load_settings(config)` fills the schema's defaults into a copy of the config, validates it
(types, ranges, unknown keys), builds every section (`polychromic.settings`), every experiment
with its objective's typed settings (`polychromic.objectives`) and every system with its
sampling variants (`polychromic.systems`), then checks what a schema cannot express: the
relations between keys (`ConfigError`, naming the key). The workflow builds it once at DAG time
(`SETTINGS` in workflow/rules/common.smk); the reporting rules and the `polychromic curate`
command build it from the config too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from polychromic import objectives, sampling
from polychromic.contract import EVALUATE_INPUTS
from polychromic.encoders import default_layer, same_encoder
from polychromic.models.known import check_model_choice
from polychromic.settings import (
    SECTIONS,
    ConfigError,
    CurationSettings,
    DataSettings,
    EvaluationSettings,
    GenerationSettings,
    LoraSettings,
    ModelSettings,
    PaperSettings,
    SplitSettings,
    TrainingSettings,
    build,
    schema,
    validated,
)
from polychromic.systems import KEYS, System, expand_systems, system_variants, variant_system

__all__ = ["ConfigError", "Experiment", "Settings", "load_settings"]


@dataclass(frozen=True)
class Experiment:
    """One fine-tuning experiment: its name, objective and the objective's typed settings."""

    name: str
    objective: str
    settings: Any  # the objective's settings dataclass (polychromic.objectives)

    @classmethod
    def from_config(cls, name: str, values: Mapping[str, Any]) -> Experiment:
        values = dict(values)
        objective = values.pop("objective", None)
        try:
            settings = objectives.build_settings(objective, values)
        except ValueError as error:
            raise ConfigError(f"experiments.{name}: {error}") from error
        return cls(name, objective, settings)

    def as_config(self) -> dict[str, Any]:
        """The experiment as a config entry, every default filled in."""
        return {"objective": self.objective, **objectives.settings_as_config(self.settings)}


@dataclass(frozen=True)
class Settings:
    seeds: tuple[int, ...]
    data: DataSettings
    curation: CurationSettings
    split: SplitSettings
    model: ModelSettings
    lora: LoraSettings
    training: TrainingSettings
    experiments: dict[str, Experiment]
    systems: dict[str, System]  # every system, each followed by its sampling variants
    generation: GenerationSettings
    evaluation: EvaluationSettings
    paper: PaperSettings


def command_line_seeds(seeds: Any) -> Any:
    """`--config seeds=[42]` may bring the seeds as strings: an integer literal becomes the
    integer; anything else is left as it is, for the schema to refuse naming `seeds` (a
    cast here turned 42.9 into 42, true into 1, and "forty-two" into a bare int() error)."""
    if not isinstance(seeds, list):
        return seeds
    return [int(seed) if isinstance(seed, str) and re.fullmatch(r"\s*[+-]?\d+\s*", seed)
            else seed for seed in seeds]


def load_settings(config: Mapping[str, Any]) -> Settings:
    """Validate the whole config (defaults filled in), build every section, check relations."""
    filled = validated(schema(), dict(config), "")
    experiments = {name: Experiment.from_config(name, values)
                   for name, values in filled["experiments"].items()}
    check_systems(filled, experiments)
    systems = {name: System.from_config(name, values)
               for name, values in expand_systems(filled["systems"]).items()}
    settings = Settings(
        seeds=tuple(int(seed) for seed in filled["seeds"]),  # 42.0 passes as an integer
        experiments=experiments, systems=systems,
        **{name: build(cls, filled[name]) for name, cls in SECTIONS.items()})
    check_relations(settings)
    return settings


def criterion_is_reward(settings: Settings) -> list[str]:
    """The experiments whose training reward is the evaluation's pass criterion: `reward:
    rougeL` while `evaluation.passk.criterion` is `rougeL` (the same ROUGE-L F1 to the closest
    reference), so training optimises what pass@k counts."""
    if settings.evaluation.passk.criterion != "rougeL":
        return []
    return [name for name, experiment in settings.experiments.items()
            if getattr(experiment.settings, "reward", None) == "rougeL"]


def check_judge(settings: Settings) -> None:
    """The judge must be an encoder that no training reward used, compared by name, folder and
    weights (`encoders.same_encoder`), and the pass criterion must not be a training reward
    (`criterion_is_reward`), unless evaluation.allow_judge_as_reward; the judge's BERTScore
    layer must be known."""
    evaluation = settings.evaluation
    for name, experiment in settings.experiments.items():
        reward = getattr(experiment.settings, "reward_model", None)
        if reward is not None and not evaluation.allow_judge_as_reward and same_encoder(
                evaluation.judge, reward):
            raise ConfigError(
                f"evaluation.judge = {evaluation.judge!r} is the reward_model of experiments."
                f"{name} ({reward!r}: the same name, folder or weights): the evaluation would "
                "score with the model that training optimised; choose another judge, or set "
                "evaluation.allow_judge_as_reward: true (the paper then says so)")
    rouge = criterion_is_reward(settings)
    if rouge and not evaluation.allow_judge_as_reward:
        raise ConfigError(
            f"experiments.{rouge[0]}.reward = 'rougeL' and evaluation.passk.criterion = "
            "'rougeL': training would optimise the evaluation's own pass criterion (ROUGE-L to "
            "the closest reference), so pass@k would count what was trained; choose another "
            "criterion or reward, or set evaluation.allow_judge_as_reward: true (the paper "
            "then says so)")
    if evaluation.bertscore_layer is None and default_layer(evaluation.judge) is None:
        raise ConfigError(f"evaluation.bertscore_layer: the judge {evaluation.judge!r} is a "
                          "model folder, so its BERTScore layer must be set")


def check_selection(settings: Settings) -> None:
    """best_val_loss and early stopping go by the validation CE: they cannot judge an experiment
    whose objective does not train the CE term (ce_weight 0)."""
    training = settings.training
    for name, experiment in settings.experiments.items():
        if getattr(experiment.settings, "ce_weight", 1.0) != 0:
            continue
        if training.checkpoint_selection == "best_val_loss":
            raise ConfigError(
                f"experiments.{name}.ce_weight is 0, so its validation CE says nothing of its "
                "objective: set training.checkpoint_selection: last (or give the CE a weight)")
        if training.early_stopping_patience:
            raise ConfigError(
                f"experiments.{name}.ce_weight is 0, so its validation CE says nothing of its "
                "objective: set training.early_stopping_patience: 0")


def reference_reward(settings: Settings) -> dict[str, Any] | None:
    """The training reward of the reference system's objective ({experiment, reward,
    reward_model, quality_threshold}), what the judges' agreement with the reward is measured
    against; None when that objective samples no reward (SFT, or a system without adapter)."""
    system = settings.systems[settings.evaluation.reference_system]
    if system.experiment is None:
        return None
    values = settings.experiments[system.experiment].settings
    if not hasattr(values, "reward_model"):
        return None
    return {"experiment": system.experiment, "reward": values.reward,
            "reward_model": values.reward_model,
            "quality_threshold": values.quality_threshold}


def check_judges(settings: Settings) -> None:
    """The primary judge and the second readings name registered judge kinds; the verdict's k
    is one of the configured ks."""
    from polychromic.evaluation.judges import AUTO, JUDGES

    evaluation = settings.evaluation
    if evaluation.judge_kind != AUTO and evaluation.judge_kind not in JUDGES:
        raise ConfigError(f"evaluation.judge_kind = {evaluation.judge_kind!r} is not a judge "
                          f"kind ({', '.join(JUDGES)}, or auto); the judge's encoder is "
                          "evaluation.judge")
    unknown = [kind for kind in evaluation.second_judges if kind not in JUDGES]
    if unknown:
        raise ConfigError(f"evaluation.second_judges has {unknown}, not judge kinds "
                          f"({', '.join(JUDGES)})")
    if evaluation.verdict_k is not None and evaluation.verdict_k not in evaluation.passk.k:
        raise ConfigError(f"evaluation.verdict_k = {evaluation.verdict_k} is not one of "
                          f"evaluation.passk.k {list(evaluation.passk.k)}")


def check_variants(name: str, values: dict[str, Any], generation: dict[str, Any]) -> None:
    """A system's sampling variants (`temperatures`, `variants`): every name given once, and no
    two of the system and its variants sampling alike (a variant whose every key equals
    generation's is the system itself): they would be the same generations twice."""
    try:
        expand_systems({name: values})
        variants = list(system_variants(name, values))
    except ValueError as error:
        raise ConfigError(str(error)) from error
    plain = {key: float(generation[key]) for key in KEYS}
    seen = {tuple(plain.values()): f"{name} itself (generation's {', '.join(KEYS)})"}
    for where, overrides in variants:
        variant = variant_system(name, overrides)
        sampled = tuple({**plain, **{k: float(v) for k, v in overrides.items().items()}}.values())
        if sampled in seen:
            raise ConfigError(f"{where}: {variant!r} samples exactly as {seen[sampled]}; "
                              "drop it or change a key")
        seen[sampled] = repr(variant)


def check_systems(config: dict[str, Any], experiments: dict[str, Experiment]) -> None:
    """Systems: names, sampling variants and the experiment of each LoRA system."""
    for name, values in config["systems"].items():  # the schema keeps `@` out of names
        if name in EVALUATE_INPUTS:
            raise ConfigError(f"systems.{name}: the name is taken by an input of the evaluate "
                              f"rule ({', '.join(EVALUATE_INPUTS)}); choose another")
        check_variants(name, values, config["generation"])
        experiment = values.get("experiment")
        if values["prompt"] == "lora" and experiment is None:
            raise ConfigError(f"systems.{name}: a lora system needs an `experiment`")
        if values["prompt"] == "lora" and experiment not in experiments:
            raise ConfigError(f"systems.{name}.experiment = {experiment!r} is not in "
                              f"experiments ({', '.join(experiments)})")
        if values["prompt"] != "lora" and experiment is not None:
            raise ConfigError(f"systems.{name}: only prompt: lora systems take an experiment")


def check_relations(settings: Settings) -> None:
    """What a JSON Schema cannot express: relations between keys of different sections."""
    split = settings.split
    total = split.train + split.val + split.test
    if abs(total - 1.0) > 1e-6:
        raise ConfigError(f"split.train + split.val + split.test must be 1, got {total:g}")
    n = settings.generation.num_samples
    too_big = [k for k in settings.evaluation.passk.k if 2 * k > n]
    if too_big:
        raise ConfigError(f"evaluation.passk.k has {too_big}, more than half of "
                          f"generation.num_samples = {n}: pass@k needs n >= 2k samples (5k "
                          "recommended), else it is close to an indicator per tweet")
    check_judge(settings)
    check_judges(settings)
    check_selection(settings)
    for key in ("reference_system", "baseline_system", "diversity_ablation"):
        name = getattr(settings.evaluation, key)
        if key == "diversity_ablation" and name is None:
            continue
        if name not in settings.systems or settings.systems[name].base_system is not None:
            raise ConfigError(f"evaluation.{key} = {name!r} is not in systems")
    if settings.evaluation.reference_system == settings.evaluation.baseline_system:
        raise ConfigError("evaluation.reference_system and evaluation.baseline_system must "
                          "differ: the verdict compares one with the other")
    if settings.generation.engine not in sampling.ENGINES:
        raise ConfigError(f"generation.engine = {settings.generation.engine!r} is not a "
                          f"registered engine ({', '.join(sampling.ENGINES)})")
    try:
        check_model_choice(settings.model.name, settings.model.path)
    except ValueError as error:
        raise ConfigError(str(error)) from error
    tiny = settings.model.tiny
    if tiny.hidden_size % tiny.num_heads or tiny.num_heads % tiny.num_kv_heads:
        raise ConfigError("model.tiny: num_heads must divide hidden_size and num_kv_heads "
                          "num_heads")


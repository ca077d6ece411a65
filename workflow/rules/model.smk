# Models: the base model (tiny demo model built here, or a pointer to a local real model) and
# the LoRA fine-tunes of every (experiment, seed).


if config["model"]["path"] or config["model"]["name"]:

    # With a real local model, base_model only writes a pointer (a known model is converted
    # once per environment, usually by `make venv`): no GPU job for that.
    localrules:
        base_model,


rule base_model:
    input:
        train="results/data/splits/train.jsonl",
        val="results/data/splits/val.jsonl",
        code=library("base_model"),
    output:
        pointer="results/models/base/base_model.json",
    params:
        model=config["model"],
    log:
        "results/logs/base_model.log",
    benchmark:
        "results/benchmarks/base_model.tsv"
    threads: 2
    resources:
        gpu=lambda wildcards: 0 if config["model"]["path"] or config["model"]["name"] else 1,
        mem_mb=8000,
        runtime=120,
    conda:
        "../../envs/model.yaml"
    script:
        "../scripts/base_model.py"


rule train:
    input:
        train="results/data/splits/train.jsonl",
        val="results/data/splits/val.jsonl",
        base="results/models/base/base_model.json",
        manifest="results/data/splits/manifest.json",
        prompts=f"{PROMPTS}/lora.j2",
        system_message=f"{PROMPTS}/system.j2",
        code=library(
            "train",
            ["polychromic.objectives", "polychromic.sampling", "polychromic.training.launch"],
        ),
    output:
        adapter=directory("results/models/{experiment}/seed_{seed}/adapter"),
        log_csv="results/models/{experiment}/seed_{seed}/training_log.csv",
        summary="results/models/{experiment}/seed_{seed}/run.json",
    params:
        experiment=lambda wildcards: config["experiments"][wildcards.experiment],
        training=config["training"],
        lora=config["lora"],
        prompts_dir=lambda wildcards, input: os.path.dirname(input.prompts),
        # Outside the rule's outputs, so a killed job's re-run resumes from it.
        checkpoint_dir="results/checkpoints/{experiment}/seed_{seed}",
    log:
        "results/logs/train/{experiment}_seed_{seed}.log",
    benchmark:
        "results/benchmarks/train/{experiment}_seed_{seed}.tsv"
    threads: 1
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=240,
    conda:
        "../../envs/model.yaml"
    script:
        "../scripts/train.py"

# Evaluation: generations of every system per seed, then metrics and tests from saved generations.


rule generate:
    input:
        test="results/data/splits/test.jsonl",
        train="results/data/splits/train.jsonl",
        base="results/models/base/base_model.json",
        adapter=get_adapter,
        template=get_prompt_template,
    output:
        generations="results/generations/seed_{seed}/{system}.jsonl",
    params:
        system_settings=lambda wildcards: SYSTEMS_CONFIG[wildcards.system],
        generation=config["generation"],
        prompts_dir=lambda wildcards, input: os.path.dirname(input.template),
    log:
        "results/logs/generate/seed_{seed}_{system}.log",
    benchmark:
        "results/benchmarks/generate/seed_{seed}_{system}.tsv"
    threads: 1
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=120,
    conda:
        "../../envs/model.yaml"
    script:
        "../scripts/generate.py"


rule evaluate:
    input:
        unpack(get_generations),
        code=library(
            "evaluation/evaluate.py",
            "evaluation/diversity.py",
            "evaluation/quality.py",
            "evaluation/passk.py",
            "evaluation/stats.py",
            "evaluation/registry.py",
            "evaluation/coverage.py",
            "embeddings.py",
        ),
    output:
        diversity="results/evaluation/seed_{seed}/diversity_metrics.json",
        quality="results/evaluation/seed_{seed}/quality_metrics.json",
        passk="results/evaluation/seed_{seed}/passk_results.json",
        statistics="results/evaluation/seed_{seed}/statistical_tests.json",
    params:
        settings=config["evaluation"],
    log:
        "results/logs/evaluate/seed_{seed}.log",
    benchmark:
        "results/benchmarks/evaluate/seed_{seed}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/evaluate.yaml"
    script:
        "../scripts/evaluate.py"

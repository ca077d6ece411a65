# Evaluation: generations of every system per seed, then metrics and tests from saved generations.


rule generate:
    input:
        test="results/data/splits/test.jsonl",
        train="results/data/splits/train.jsonl",
        base="results/models/base/base_model.json",
        adapter=get_adapter,
        template=get_prompt_template,
        code=library("generate", ["polychromic.sampling"]),
    output:
        generations="results/generations/seed_{seed}/{system}.jsonl",
    params:
        system=system_params,
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
        code=library("evaluate"),
    output:
        **{
            name: f"results/evaluation/seed_{{seed}}/{file}"
            for name, file in SEED_FILES.items()
        },
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

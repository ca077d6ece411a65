# Evaluation: generations of every system per seed, then metrics and tests from saved generations.


localrules:
    select_sampling,  # selection.json from the search's last state: JSON only


rule generate:
    input:
        split="results/data/splits/test.jsonl",
        train="results/data/splits/train.jsonl",
        base="results/models/base/base_model.json",
        adapter=get_adapter,
        template=get_prompt_template,
        system_message=f"{PROMPTS}/system.j2",
        selection=get_selection,
        code=library("generate", ["polychromic.sampling"]),
    output:
        generations="results/generations/seed_{seed}/{system}.jsonl",
    params:
        system=system_params,
        generation=config["generation"],
        prompts_dir=lambda wildcards, input: os.path.dirname(input.template),
        max_prompts=None,
        selection=SELECTION_FILE if SEARCH else None,
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
        GENERATE_ENV
    script:
        "../scripts/generate.py"


rule generate_val:
    input:
        split="results/data/splits/val.jsonl",
        train="results/data/splits/train.jsonl",
        base="results/models/base/base_model.json",
        adapter=get_candidate_adapter,
        template=get_candidate_template,
        system_message=f"{PROMPTS}/system.j2",
        code=library("generate", ["polychromic.sampling"]),
    output:
        generations="results/selection/seed_{seed}/{candidate}.jsonl",
    params:
        system=candidate_params,
        generation={**config["generation"], "num_samples": SELECTION.num_samples},
        max_prompts=SELECTION.max_prompts,
        prompts_dir=lambda wildcards, input: os.path.dirname(input.template),
        selection=None,  # the choice is what this rule feeds
    log:
        "results/logs/generate_val/seed_{seed}_{candidate}.log",
    benchmark:
        "results/benchmarks/generate_val/seed_{seed}_{candidate}.tsv"
    threads: 1
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=60,
    conda:
        GENERATE_ENV
    script:
        "../scripts/generate.py"


checkpoint search:
    input:
        unpack(search_inputs),
        code=library("search"),
    output:
        state="results/selection/search/round_{round}.json",
    params:
        # what the search reads: editing another evaluation setting does not redo it (and so
        # every test generation after it)
        evaluation={
            key: config["evaluation"][key]
            for key in (
                "judge", "judge_precision", "bertscore_layer", "passk", "selection",
                "baseline_system", "match_tolerance",
            )
        },
        generation=config["generation"],
    log:
        "results/logs/search/round_{round}.log",
    benchmark:
        "results/benchmarks/search/round_{round}.tsv"
    threads: 2  # the judge over the round's validation candidates
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/evaluate.yaml"
    script:
        "../scripts/search.py"


rule select_sampling:
    input:
        state=f"results/selection/search/round_{SEARCH_ROUNDS}.json",
        code=library("select_sampling"),
    output:
        selection=SELECTION_FILE,
    params:
        evaluation={
            key: config["evaluation"][key]
            for key in ("selection", "baseline_system", "match_tolerance")
        },
        generation=config["generation"],
    log:
        "results/logs/select_sampling.log",
    benchmark:
        "results/benchmarks/select_sampling.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        "../../envs/evaluate.yaml"
    script:
        "../scripts/select_sampling.py"


rule calibrate:
    input:
        val="results/data/splits/val.jsonl",
        code=library("calibrate"),
    output:
        calibration=f"results/evaluation/{CALIBRATION_FILE}",
    params:
        # what the calibration reads: editing another evaluation setting does not redo it
        evaluation={
            "judge": SETTINGS.evaluation.judge,
            "judge_precision": SETTINGS.evaluation.judge_precision,
            "bertscore_layer": SETTINGS.evaluation.bertscore_layer,
            "stats_seed": SETTINGS.evaluation.stats_seed,
            "passk": {"criterion": SETTINGS.evaluation.passk.criterion},
        },
    log:
        "results/logs/calibrate.log",
    benchmark:
        "results/benchmarks/calibrate.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    conda:
        "../../envs/evaluate.yaml"
    script:
        "../scripts/calibrate.py"


rule evaluate:
    input:
        unpack(get_generations),  # by system name: contract.EVALUATE_INPUTS are not systems
        unpack(get_reward_run),
        calibration=f"results/evaluation/{CALIBRATION_FILE}",
        code=library("evaluate"),
    output:
        **{
            name: f"results/evaluation/seed_{{seed}}/{file}"
            for name, file in SEED_FILES.items()
        },
    params:
        settings=config["evaluation"],
        # the reference system's training reward: the judges' agreement with it
        reward=reference_reward(SETTINGS),
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

# Data stage: raw JSONL -> validated -> collection report / review sample -> curated -> splits
# -> the data release of the submission package.


localrules:
    validate_raw,
    verify_collection,
    sample_for_review,
    curate,
    split,
    release,


rule validate_raw:
    input:
        raw=config["data"]["raw"],
        code=library("validate_raw"),
    output:
        validated="results/data/validated.jsonl",
        rejected="results/data/rejected.jsonl",
        report="results/data/validation_report.json",
    params:
        # the part of config `data` this rule reads (a change to the rest does not re-run it)
        data={key: config["data"][key] for key in ("max_rejected_fraction", "format")},
        # where a failing run copies its report and rejected lines: Snakemake deletes the
        # outputs of a failed job, and the error message sends the user to these
        evidence="results/logs/validate_raw",
    log:
        "results/logs/validate_raw.log",
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/validate_raw.py"


rule verify_collection:
    input:
        validated="results/data/validated.jsonl",
        validation="results/data/validation_report.json",
        code=library("verify_collection"),
    output:
        json="results/data/collection_report.json",
        md="results/data/collection_report.md",
    params:
        data={key: config["data"][key] for key in ("thresholds", "strict")},
    log:
        "results/logs/verify_collection.log",
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/verify_collection.py"


rule sample_for_review:
    input:
        validated="results/data/validated.jsonl",
        code=library("sample_for_review"),
    output:
        samples="results/data/quality_check_samples.txt",
    params:
        data={"review": config["data"]["review"]},
    log:
        "results/logs/sample_for_review.log",
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/sample_for_review.py"


rule curate:
    input:
        validated="results/data/validated.jsonl",
        decisions=get_decisions,
        code=library("curate"),
    output:
        curated="results/data/curated.jsonl",
        report="results/data/curation_report.json",
    params:
        curation=config["curation"],
    log:
        "results/logs/curate.log",
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/curate.py"


rule split:
    input:
        curated="results/data/curated.jsonl",
        code=library("split"),
    output:
        train="results/data/splits/train.jsonl",
        val="results/data/splits/val.jsonl",
        test="results/data/splits/test.jsonl",
        manifest="results/data/splits/manifest.json",
        report="results/data/split_report.json",
    params:
        split=config["split"],
    log:
        "results/logs/split.log",
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/split.py"


rule release:
    input:
        train="results/data/splits/train.jsonl",
        val="results/data/splits/val.jsonl",
        test="results/data/splits/test.jsonl",
        manifest="results/data/splits/manifest.json",
        split_report="results/data/split_report.json",
        curation_report="results/data/curation_report.json",
        code=library("release"),
    output:
        dataset=directory("results/release/dataset"),
    params:
        release_texts=SETTINGS.paper.release_texts,
        # the card says whether the corpus is synthetic (None: the demo corpus is)
        synthetic=SETTINGS.data.synthetic,
    log:
        "results/logs/release.log",
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/release.py"

from polychromic.steps import run_step
from polychromic.training.train import launch_training

run_step(
    snakemake,
    launch_training,
    gpus=snakemake.resources.get("gpu", 1),
    spec={
        "job": {
            "train": snakemake.input.train,
            "val": snakemake.input.val,
            "base": snakemake.input.base,
            "prompts_dir": snakemake.params.prompts_dir,
            "adapter_dir": snakemake.output.adapter,
            "log_csv": snakemake.output.log_csv,
            "summary": snakemake.output.summary,
            "checkpoint_dir": snakemake.params.checkpoint_dir,
            "manifest": snakemake.input.manifest,
        },
        "experiment": {"name": snakemake.wildcards.experiment, **snakemake.params.experiment},
        "training": dict(snakemake.params.training),
        "lora": dict(snakemake.params.lora),
        "seed": int(snakemake.wildcards.seed),
    },
)

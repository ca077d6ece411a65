from polychromic.steps import run_step
from polychromic.training.train import launch_training

run_step(
    snakemake,
    launch_training,
    gpus=snakemake.resources.get("gpu", 1),
    train=snakemake.input.train,
    val=snakemake.input.val,
    base=snakemake.input.base,
    adapter_dir=snakemake.output.adapter,
    log_csv=snakemake.output.log_csv,
    summary=snakemake.output.summary,
    experiment_name=snakemake.wildcards.experiment,
    experiment=dict(snakemake.params.experiment),
    training=dict(snakemake.params.training),
    lora=dict(snakemake.params.lora),
    prompts_dir=snakemake.params.prompts_dir,
    seed=int(snakemake.wildcards.seed),
    embedding_model=snakemake.params.embedding_model,
    checkpoint_dir=snakemake.params.checkpoint_dir,
    manifest=snakemake.input.manifest,
)

# The polychromic study: raw tweet/reply JSONL -> splits -> LoRA fine-tunes -> generations ->
# metrics -> aggregate -> tables, figures, paper. See README.md and docs/file_contract.md.
#   snakemake --cores 2            run the study (make run)
#   snakemake -n                   list pending jobs
#   snakemake --profile profiles/slurm   on a SLURM cluster
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


# workflow/rules/common.smk validates the config against workflow/schemas/config.schema.yaml
# (filling its defaults) and builds the typed settings.


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        get_final_outputs(),
    default_target: True

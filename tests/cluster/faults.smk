# A tiny workflow for the fault tests on the live SLURM (tests/cluster/test_cluster.py): jobs of a
# few seconds whose trouble is provoked on purpose, so the tests need not run the real DAG again.
#   quick_{i}, slow -> gather   Snakemake is interrupted while `slow` waits for the file `release`
#   hog                         allocates `hog_mb` MB: over its first --mem, under its second


localrules:
    all,
    gather,


rule all:
    input:
        "gather.txt",


rule quick:
    output:
        "quick_{i}.txt",
    shell:
        "echo {wildcards.i} > {output}"


rule slow:
    output:
        "slow.txt",
    shell:
        "while [ ! -e release ]; do sleep 1; done; echo released > {output}"


rule gather:
    input:
        expand("quick_{i}.txt", i=[1, 2]),
        "slow.txt",
    output:
        "gather.txt",
    shell:
        "cat {input} > {output}"


rule hog:
    output:
        "hog.txt",
    params:
        mb=config.get("hog_mb", 700),
    shell:
        # Fill `mb` MB, then hold them long enough for SLURM's 1 s memory poll.
        "python3 -c 'import time; b = b\"x\" * ({params.mb} << 20); time.sleep(4)' "
        "&& echo mem_mb={resources.mem_mb} > {output}"

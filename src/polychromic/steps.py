"""Glue between a Snakemake `script:` and a library function: logging, threads, errors.

Every rule's script is two lines: import one function, `run_step(snakemake, fn, **kwargs)`.
`run_step` sends Python logging, warnings and tqdm progress (stderr) to the rule's `log:` file,
limits torch to the rule's `threads`, and records the traceback in the log when the step fails.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("polychromic")


def configure_logging(log_path: str | Path | None = None, level: int = logging.INFO) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers = [logging.FileHandler(log_path, mode="w", encoding="utf-8")]
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)


def set_threads(threads: int) -> None:
    """One rule, `threads` cores: keeps parallel jobs from oversubscribing the machine."""
    try:
        import torch
    except ImportError:  # the reporting environment has no torch, and needs none
        return
    torch.set_num_threads(max(1, int(threads)))


def run_step(smk: Any, function: Callable[..., Any], **kwargs: Any) -> Any:
    """Run `function(**kwargs)` inside a Snakemake script with logging to `smk.log[0]`."""
    log_path = smk.log[0] if len(smk.log) else None
    configure_logging(log_path)
    set_threads(getattr(smk, "threads", 1))
    started = time.perf_counter()
    stream = open(log_path, "a", encoding="utf-8") if log_path else sys.stderr  # noqa: SIM115
    try:
        with contextlib.redirect_stderr(stream):
            log.info("rule %s: %s", getattr(smk, "rule", "?"), function.__qualname__)
            result = function(**kwargs)
            log.info("done in %.1f s", time.perf_counter() - started)
            return result
    except BaseException:
        log.error("step failed:\n%s", traceback.format_exc())
        raise
    finally:
        if stream is not sys.stderr:
            stream.close()

"""The vLLM engine in another Python: a worker process and its client, one JSON line per call.

Why: vLLM pins its own torch and transformers, so on a machine where the workflow's
environment cannot import it, the engine runs in the vLLM environment's Python (`.venv-vllm`,
`make vllm-env`) and the `generate` job talks to it. `WorkerEngine` is the client: it is an
`polychromic.sampling.base.Engine` like any other (its tokenizer is loaded here, from the same
folder, so prompts are built exactly as for the transformers engine), and each call is sent to
the worker as one JSON line `{"op": ..., "args": {...}}` and answered by one line
`{"result": ...}` or `{"error": traceback}`.

The worker (`python -m polychromic.sampling.vllm_worker POINTER ADAPTER|-`) runs
`polychromic.sampling.vllm.VLLMEngine` and answers on a private copy of its standard output;
its file descriptor 1 is pointed at standard error, so whatever vLLM prints never corrupts an
answer. Its standard error is copied line by line into the job's log. It exits when its input
closes (the job ended), so no worker outlives its job.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

from polychromic.io import read_json
from polychromic.sampling.base import Sampling

log = logging.getLogger(__name__)

SRC = Path(__file__).resolve().parents[2]  # the folder holding the polychromic package


class WorkerEngine:
    """The client of a vLLM worker process (module docstring)."""

    def __init__(self, python: Path, base: str, adapter: str | None) -> None:
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(read_json(base)["path"])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            part for part in (str(SRC), os.environ.get("PYTHONPATH", "")) if part)}
        self.process = subprocess.Popen(
            [str(python), "-m", "polychromic.sampling.vllm_worker", str(base), adapter or "-"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env, bufsize=1)
        self.stderr: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        self._call("ready")

    def _drain(self) -> None:
        for line in self.process.stderr:
            self.stderr.append(line.rstrip())
            log.info("vllm worker: %s", line.rstrip())

    def _call(self, op: str, **args: Any) -> Any:
        try:
            self.process.stdin.write(json.dumps({"op": op, "args": args}) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            code = self.process.wait()
            tail = "\n".join(self.stderr[-20:])
            raise RuntimeError(f"the vLLM worker exited (status {code}) during {op!r}; its "
                               f"last output:\n{tail}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the vLLM worker failed during {op!r}:\n{answer['error']}")
        return answer["result"]

    def seed(self, seed: int, system: str = "") -> None:
        self._call("seed", seed=seed, system=system)

    def greedy(self, prompts: list[list[int]], max_new_tokens: int) -> list[str]:
        return self._call("greedy", prompts=prompts, max_new_tokens=max_new_tokens)

    def sample(self, prompts: list[list[int]], n: int, sampling: Sampling) -> list[list[str]]:
        return self._call("sample", prompts=prompts, n=n, sampling=asdict(sampling))

    def reference_nll(self, prompt: list[int], references: list[str]
                      ) -> tuple[list[float], list[int]]:
        nll, counts = self._call("reference_nll", prompt=prompt, references=references)
        return nll, counts

    def close(self) -> None:
        """End the worker (it also ends by itself when this process exits)."""
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=60)


def serve(base: str, adapter: str | None, requests: Any, answers: Any) -> None:
    """Answer each request line of `requests` on `answers` until the input closes."""
    from polychromic.sampling.vllm import VLLMEngine

    engine = VLLMEngine(base, adapter)
    for line in requests:
        request = json.loads(line)
        op, args = request["op"], request["args"]
        try:
            if op == "sample":
                args["sampling"] = Sampling(**args["sampling"])
            result = None if op == "ready" else getattr(engine, op)(**args)
            answer = {"result": result}
        except Exception:  # noqa: BLE001 - sent to the client, which raises it
            answer = {"error": traceback.format_exc()}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


def main(argv: list[str]) -> int:
    base, adapter = argv[0], None if argv[1] == "-" else argv[1]
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # anything printed (vLLM's logs, progress bars) goes to standard error
    sys.stdout = sys.stderr
    serve(base, adapter, sys.stdin, answers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

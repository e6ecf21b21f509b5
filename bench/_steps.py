"""A benchmark's steps in fresh processes: each step prints its figures as one JSON
document, so that the peak RSS a step reads is its own (a lean parent only spawns them)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def run_step(module: str, *args: str) -> dict[str, Any]:
    """``python -m MODULE ARGS`` in a fresh interpreter; the JSON it printed."""
    command = [sys.executable, "-m", module, *args]
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE)
    result: dict[str, Any] = json.loads(done.stdout)
    return result

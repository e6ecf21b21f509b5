"""Time and memory of the drift probe's shape diff on two 5 MB JSON answers.

Run by hand (not part of the test suite):

    .venv/bin/python -m bench.drift [--elements 100000]

Writes three answers of a pkgdb2-like ``/api/packages`` (in a temporary directory): the
production answer — ``{"output", "generated", "request_id", "packages": [10^5 objects]}``,
each package with a name, id, summary, its ``acls`` (a list, ``[]`` for most) and for one
in twenty an ``updated`` time — about 5 MB; production asked again
(the list in another order, a new ``generated`` time and ``request_id``: noise); and
staging's (``summary`` renamed ``description`` in every package, ``acls`` ``null`` where
production has ``[]``: the 2014 break, and the same noise).

Then, in a fresh process (like the bot's worker thread would, from the bytes read off the
network), it times :func:`deploybot.drift.diff.read_answer` (``json.loads`` and
:func:`~deploybot.drift.shape.infer`) and :func:`~deploybot.drift.diff.compare`:

* **the shape diff of two answers** — production's and staging's read, then compared
  (production given as its own second answer): the figure the goal is about;
* the whole probe — three answers read (production twice) and compared, noise subtracted;

each the best of five, with the parts apart (parsing, inference, comparing); checks the
differences found are the two breaks and nothing of the noise or the order; reads the
process's peak RSS (``ru_maxrss``, the three bodies held as bytes included), and finally
the tracemalloc peak of one more two-answer diff (tracemalloc slows it down, so it comes
last).

Targets (2-core machine): under 1 s and under 200 MB for the shape diff of two answers.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench._steps import run_step
from deploybot.drift.diff import Answer, compare, read_answer
from deploybot.drift.shape import infer

ELEMENTS = 100_000
RUNS = 5
TARGET_SECONDS = 1.0
TARGET_MB = 200.0
JSON = "application/json"
NAMES = ("production.json", "production-again.json", "staging.json")
EXPECTED = [
    ("key-renamed", ".packages[].summary"),
    ("type-changed", ".packages[].acls"),
]


# -- the answers ------------------------------------------------------------------------


def packages(rng: random.Random, count: int, *, staging: bool) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        acls: list[str] | None = ["pingou"] if i % 50 == 0 else []
        if staging and not acls:
            acls = None
        package: dict[str, Any] = {"name": f"p{i:05d}", "id": i, "acls": acls}
        package["description" if staging else "summary"] = "x" * rng.randint(0, 4)
        if i % 20 == 0:
            package["updated"] = f"2014-05-{1 + i % 28:02d}T10:00:00Z"
        out.append(package)
    return out


def make(directory: Path, count: int) -> dict[str, int]:
    """Write the three answers; return their sizes in bytes."""
    sizes = {}
    for name, staging, seed in zip(NAMES, (False, False, True), (1, 2, 3), strict=True):
        rng = random.Random(20140528)  # the same summaries on every side
        listed = packages(rng, count, staging=staging)
        random.Random(seed).shuffle(listed)  # another order every time: not a difference
        document = {
            "output": "ok",
            "generated": f"2014-05-27T10:00:0{seed}Z",  # noise
            "request_id": f"req-{seed}-{random.Random(seed).getrandbits(64):x}",  # noise
            "packages": listed,
        }
        body = json.dumps(document, separators=(",", ":")).encode()  # as compact as APIs
        (directory / name).write_bytes(body)
        sizes[name] = len(body)
    return sizes


# -- measuring (in a fresh process) -----------------------------------------------------


def _rss_mb() -> float:
    """Peak RSS by getrusage (Linux: kilobytes) of this process, which the lean parent
    only spawned."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _best(runs: int, work: Any) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(runs):
        gc.collect()
        began = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - began)
    return best, result


def measure(directory: Path) -> dict[str, Any]:
    production, again, staging = ((directory / name).read_bytes() for name in NAMES)
    rss_before = _rss_mb()

    def two() -> tuple[Answer, Answer, tuple[Any, ...]]:
        one = read_answer(200, JSON, production)
        other = read_answer(200, JSON, staging)
        return one, other, compare(one, one, other)

    def three() -> tuple[Any, ...]:
        one = read_answer(200, JSON, production)
        return compare(one, read_answer(200, JSON, again), read_answer(200, JSON, staging))

    two_s, answers = _best(RUNS, two)
    found_two = answers[2]
    three_s, found_three = _best(RUNS, three)
    loads_s, document = _best(RUNS, lambda: json.loads(production))
    infer_s, _ = _best(RUNS, lambda d=document: infer(d))
    del document
    compare_s, _ = _best(RUNS, lambda a=answers: compare(a[0], a[0], a[1]))
    rss = _rss_mb()
    del answers
    gc.collect()
    tracemalloc.start()
    two()
    traced_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return {
        "two_s": two_s,
        "three_s": three_s,
        "loads_s": loads_s,
        "infer_s": infer_s,
        "compare_s": compare_s,
        "rss_before_mb": rss_before,
        "rss_mb": rss,
        "tracemalloc_peak_mb": traced_peak,
        "found_two": [[d.kind, d.path, d.text] for d in found_two],
        "found_three": [[d.kind, d.path, d.text] for d in found_three],
    }


def _run(*args: str) -> dict[str, Any]:
    return run_step("bench.drift", *args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--elements", type=int, default=ELEMENTS, help="packages per answer")
    parser.add_argument("--step", choices=("make", "measure"), help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step == "make":
        print(json.dumps(make(args.dir, args.elements)))
        return 0
    if args.step == "measure":
        print(json.dumps(measure(args.dir)))
        return 0
    with tempfile.TemporaryDirectory(prefix="deploybot-bench-") as tmp:
        sizes = _run("--step", "make", "--dir", tmp, "--elements", str(args.elements))
        result = _run("--step", "measure", "--dir", tmp)
    mb = {name: size / 2**20 for name, size in sizes.items()}
    print(
        f"answers of {args.elements:,} packages: production {mb[NAMES[0]]:.1f} MB, "
        f"again {mb[NAMES[1]]:.1f} MB, staging {mb[NAMES[2]]:.1f} MB"
    )
    found = [(kind, path) for kind, path, _ in result["found_two"]]
    right = found == EXPECTED and result["found_three"] == result["found_two"]
    ok_time = result["two_s"] < TARGET_SECONDS
    ok_memory = result["rss_mb"] < TARGET_MB
    print("shape diff of two answers (read_answer of each + compare), fresh process:")
    print(f"  time       best of {RUNS} {result['two_s']:.3f} s   target < {TARGET_SECONDS:g} s: "
          f"{'met' if ok_time else 'MISSED'}")  # fmt: skip
    print(f"             per answer: json.loads {result['loads_s']:.3f} s, infer "
          f"{result['infer_s']:.3f} s; compare {result['compare_s'] * 1000:.2f} ms")  # fmt: skip
    print(f"  peak RSS   {result['rss_mb']:.1f} MB for the whole process, which ran the "
          f"three-answer probe too (getrusage; {result['rss_before_mb']:.1f} MB with the three "
          f"bodies read)   target < "
          f"{TARGET_MB:.0f} MB: {'met' if ok_memory else 'MISSED'}")  # fmt: skip
    print(f"  tracemalloc peak of one two-answer diff: {result['tracemalloc_peak_mb']:.1f} MB")
    print(f"the whole probe (production twice, staging; noise subtracted): best of {RUNS} "
          f"{result['three_s']:.3f} s")  # fmt: skip
    print("differences found (the same in both):" if right else "WRONG differences:")
    for _, _, text in result["found_two"]:
        print(f"  {text}")
    return 0 if ok_time and ok_memory and right else 1


if __name__ == "__main__":
    sys.exit(main())

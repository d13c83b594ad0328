"""Does following faces between detections change micro-expression spotting? Same clips, both ways.

Runs the constructed real-face clips of `bench/micro_expressions.py` (MEGC scoring) through one
Analyzer twice per clip, in turns: detector on every frame (`detect_period_ms = 0`) and as served
(detector every 200 ms, faces followed in between). Prints precision/recall/F1 and false
positives per minute on the no-event clips for both, plus the time each took.

    python bench/followed_micro_accuracy.py [--scale 0.3] [--seed 2024]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.micro_expressions import run_clip, summarise  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--scale", type=float, default=0.3, help="fraction of micro_expressions.py's suite")
    parser.add_argument("--sensitivity", type=float, default=0.5)
    args = parser.parse_args()

    from api.engine.analyzer import Analyzer
    from api.wiring.config import DEFAULT_EMOTION_MODEL
    from bench.micro_clips import benchmark_specs

    analyzer = Analyzer(Path(tempfile.mkdtemp()), DEFAULT_EMOTION_MODEL, threads=1)
    served_period = analyzer.detect_period_ms
    variants = {"every-frame": 0.0, "followed": served_period}
    results = {name: ([], []) for name in variants}
    seconds = {name: 0.0 for name in variants}
    event_specs, quiet_specs = benchmark_specs(args.seed, args.scale)
    for n, spec in enumerate(event_specs + quiet_specs):
        order = list(variants) if n % 2 == 0 else list(reversed(variants))
        for name in order:
            analyzer.detect_period_ms = variants[name]
            started = time.perf_counter()
            r = run_clip(analyzer, spec, args.sensitivity, "dlib")
            seconds[name] += time.perf_counter() - started
            results[name][0 if spec.events else 1].append(r)
        print(
            f"{spec.name:16s} "
            + "  ".join(
                f"{name}: predicted {results[name][0 if spec.events else 1][-1].counts['overall'].n_pred} "
                f"tp {results[name][0 if spec.events else 1][-1].counts['overall'].tp}"
                for name in variants
            ),
            flush=True,
        )
    for name in variants:
        summary = summarise(*results[name])
        print(
            f"{name}: {seconds[name]:.1f} s (clip rendering included)  "
            + json.dumps({k: summary[k] for k in ("micro", "macro", "overall", "no_event")})
        )


if __name__ == "__main__":
    main()

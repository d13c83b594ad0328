"""Why the micro-expression benchmark's 120 fps clips score lower: frame rate, or encoding?

Three comparisons on clips drawn from one seed (by default 99, a draw neither tuned on nor held out),
every clip 5 s long, so that only what is compared differs:

1. **The same events at 30, 60 and 120 fps.** Event times and nuisances are drawn in seconds from the
   same generator state (`micro_clips.event_clip`; times agree within two frames at 30 fps), then rendered
   and encoded at each rate.
2. **The 120 fps render analysed at 120, 60 and 30 frames/s** (the request's `fps`): the same bytes,
   fewer frames for the spotter; all scored at 120 fps frames.
3. **The 120 fps frames encoded at the clip's CRF and 3 and 6 below it** (better quality): the frames are
   the same (the render is seeded), only libx264's output differs.

Scoring is bench/micro_expressions.py's (MEGC, IoU >= 0.5), overall F1 over the clips of each column.

    python bench/micro_frame_rate.py                      # 30 clips, ~20 min on this 2-core machine
    python bench/micro_frame_rate.py --clips 4            # a quick look
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe  # noqa: E402  (bench/machine.py)

from bench.micro_clips import BACKGROUNDS, eligible_photos, event_clip, render_clip  # noqa: E402
from bench.micro_expressions import Counts, run_clip  # noqa: E402

RATES = (30.0, 60.0, 120.0)
SECONDS = 5.0
BETTER_CRF = (3, 6)  # steps below the clip's own CRF


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=99)
    parser.add_argument("--clips", type=int, default=30)
    parser.add_argument("--sensitivity", type=float, default=0.5)
    args = parser.parse_args()

    from api.engine.analyzer import Analyzer
    from api.engine.detection import DEFAULT_DETECTOR
    from api.wiring.config import DEFAULT_EMOTION_MODEL

    started = time.perf_counter()
    analyzer = Analyzer(Path(tempfile.mkdtemp()), DEFAULT_EMOTION_MODEL, threads=1)
    rng = np.random.default_rng(args.seed)
    photos = [p.name for p in eligible_photos()]
    rng.shuffle(photos)
    columns: dict[str, Counts] = defaultdict(Counts)

    def tally(line: list[str], column: str, counts: Counts) -> None:
        columns[column] += counts
        line.append(f"{column} {counts.tp}/{counts.fp}/{counts.fn}")

    for i in range(args.clips):
        clip_seed = int(rng.integers(2**32))
        line = [f"clip {i:02d}"]
        for fps in RATES:
            spec = event_clip(
                np.random.default_rng(clip_seed),
                f"c{i:02d}",
                photos[i % len(photos)],
                fps,
                SECONDS,
                i % len(BACKGROUNDS),
            )
            clip = render_clip(spec)
            tally(
                line,
                f"rendered {fps:.0f}",
                run_clip(analyzer, spec, args.sensitivity, DEFAULT_DETECTOR, clip).counts["overall"],
            )
            if fps != max(RATES):
                continue
            for rate in RATES[:-1]:
                fewer = run_clip(analyzer, spec, args.sensitivity, DEFAULT_DETECTOR, clip, fps=rate)
                tally(line, f"120 analysed at {rate:.0f}", fewer.counts["overall"])
            for step in BETTER_CRF:
                better = replace(spec, nuisance=replace(spec.nuisance, crf=spec.nuisance.crf - step))
                tally(
                    line,
                    f"120 at CRF-{step}",
                    run_clip(analyzer, better, args.sensitivity, DEFAULT_DETECTOR).counts["overall"],
                )
        print("  ".join(line), flush=True)
    print(f"\nseed {args.seed}, {args.clips} clips of {SECONDS:.0f} s, sensitivity {args.sensitivity}; {describe()}")
    print(f"{'column':22s} {'F1':>6s} {'P':>6s} {'R':>6s} {'tp':>4s} {'fp':>4s} {'fn':>4s}")
    for column, c in columns.items():
        print(f"{column:22s} {c.f1:6.3f} {c.precision:6.3f} {c.recall:6.3f} {c.tp:4d} {c.fp:4d} {c.fn:4d}")
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

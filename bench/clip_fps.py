"""Clip analysis frames/s, micro-expressions on, through `analyze_bytes` (decode to micro-expressions).

The clip (default: the real 19.7 s WolfgangLanger_Pexels.mp4) is padded to 640x480 (`--size`) and
re-encoded as H.264 in memory. Variants run in separate processes (each loads its own models once)
and take turns, one at a time, so background load hits all alike:

  every-frame   this code with the detector on every frame (`Analyzer.detect_period_ms = 0`)
  followed      this code as served: detector every 200 ms and when a face is lost, faces followed
  baseline      with `--baseline-root DIR`: the engine in DIR (e.g. `git worktree add /tmp/base HEAD`)
  followed X    with `--detectors X,...`: as served, with face detector X (the others use the default)
  baseline X    with both: the engine in DIR, with face detector X

frames/CPU-s divides by the process's own CPU time: on a shared machine it shows what the
code costs, while frames/s also counts the time other processes took the cores. Besides
frames/s it reports how far the followed boxes and labels stray from every-frame
detection (box IoU, same dominant emotion) and the track count.

    python bench/clip_fps.py [--clip PATH] [--size 640x480|native] [--repeats 3] [--baseline-root DIR]
                             [--no-micro] [--cv2-threads 2] [--detectors dlib,blazeface]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from machine import describe  # bench/machine.py

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("EMOSCOPE_DATA_DIR", ROOT.parent / "shared" / "data"))


def padded_clip(path: Path, size: str) -> tuple[bytes, int, int, int]:
    """The clip letterboxed (never stretched) to WxH, H.264 in MP4, in memory; (bytes, w, h, frames)."""
    with av.open(str(path)) as source:
        stream = source.streams.video[0]
        rate = stream.average_rate
        frames = [f.to_ndarray(format="rgb24") for f in source.decode(stream)]
    h0, w0 = frames[0].shape[:2]
    if size == "native":
        w, h = w0, h0
    else:
        w, h = (int(v) for v in size.lower().split("x"))
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as target:
        video = target.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        video.options = {"crf": "20", "preset": "fast"}
        for rgb in frames:
            scale = min(w / w0, h / h0)
            if scale != 1.0:
                import cv2

                rgb = cv2.resize(rgb, (round(w0 * scale), round(h0 * scale)), interpolation=cv2.INTER_AREA)
            canvas = np.zeros((h, w, 3), np.uint8)
            y, x = (h - rgb.shape[0]) // 2, (w - rgb.shape[1]) // 2
            canvas[y : y + rgb.shape[0], x : x + rgb.shape[1]] = rgb
            for packet in video.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                target.mux(packet)
        for packet in video.encode():
            target.mux(packet)
    return out.getvalue(), w, h, len(frames)


def serve(
    root: Path, period_ms: float | None, clip_file: Path, micro: bool, cv2_threads: int | None, detector: str | None
) -> None:
    """Worker: load the engine under `root`, then analyse the clip once per line on stdin."""
    sys.path.insert(0, str(root))
    import cv2

    from api.engine.analyzer import AnalysisOptions, Analyzer, analyze_bytes
    from api.wiring.config import DEFAULT_EMOTION_MODEL, Limits

    analyzer = Analyzer(Path(tempfile.mkdtemp()), DEFAULT_EMOTION_MODEL, threads=1)
    if period_ms is not None:
        analyzer.detect_period_ms = period_ms
    if cv2_threads is not None:
        cv2.setNumThreads(cv2_threads)
    data = clip_file.read_bytes()
    options = AnalysisOptions(micro_expressions=micro, **({"detector": detector} if detector else {}))
    limits = Limits()
    for _ in sys.stdin:
        started, cpu = time.perf_counter(), time.process_time()
        result = analyze_bytes(analyzer, data, options, limits)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        frames = [
            [[float(v) for v in face.box] + [int(np.argmax(face.emotions))] for face in frame.faces]
            for frame in result.frames
        ]
        print(
            json.dumps(
                {
                    "seconds": seconds,
                    "cpu": cpu,
                    "frames": frames,
                    "tracks": len(result.tracks),
                    "events": len(result.micro_expressions),
                    "timing": result.timing_ms,
                }
            ),
            flush=True,
        )


def box_iou(a, b) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw, ih = max(0.0, min(ax2, bx2) - max(a[0], b[0])), max(0.0, min(ay2, by2) - max(a[1], b[1]))
    union = a[2] * a[3] + b[2] * b[3] - iw * ih
    return iw * ih / union if union > 0 else 0.0


def agreement(reference: list, other: list) -> tuple[float, float, int]:
    """Median best-IoU of `other`'s faces against `reference`'s, share with the same label, face-count diff."""
    ious, same, diff = [], [], 0
    for ref_faces, faces in zip(reference, other):
        diff += abs(len(ref_faces) - len(faces))
        for face in faces:
            best = max(ref_faces, key=lambda r: box_iou(r, face), default=None)
            if best is not None:
                ious.append(box_iou(best, face))
                same.append(best[4] == face[4])
    return (statistics.median(ious) if ious else float("nan")), (float(np.mean(same)) if same else float("nan")), diff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=DATA_DIR / "videos" / "WolfgangLanger_Pexels.mp4")
    parser.add_argument("--size", default="640x480", help="WxH to letterbox to, or 'native'")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-micro", action="store_true", help="micro-expressions off")
    parser.add_argument("--baseline-root", type=Path, help="a checkout of the engine to compare with")
    parser.add_argument("--cv2-threads", type=int, help="add a 'followed' variant with this many OpenCV threads")
    parser.add_argument("--detectors", help="add a 'followed' variant per detector, comma-separated")
    parser.add_argument("--detector", help=argparse.SUPPRESS)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--period", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve, args.period, args.clip, not args.no_micro, args.cv2_threads, args.detector)

    data, width, height, count = padded_clip(args.clip, args.size)
    clip_file = Path(tempfile.mkdtemp()) / "clip.mp4"
    clip_file.write_bytes(data)
    variants = {"every-frame": (ROOT, 0.0, None, None), "followed": (ROOT, None, None, None)}
    if args.cv2_threads:
        variants[f"cv2 x{args.cv2_threads}"] = (ROOT, None, args.cv2_threads, None)
    detectors = [d for d in (args.detectors or "").split(",") if d]
    variants.update({f"followed {d}": (ROOT, None, None, d) for d in detectors})
    if args.baseline_root:
        baseline = args.baseline_root.resolve()
        variants = {
            "baseline": (baseline, None, None, None),
            **{f"baseline {d}": (baseline, None, None, d) for d in detectors},
            **variants,
        }
    workers = {}
    for name, (root, period, threads, detector) in variants.items():
        command = [sys.executable, __file__, "--serve", str(root), "--clip", str(clip_file)]
        command += ["--period", str(period)] if period is not None else []
        command += ["--cv2-threads", str(threads)] if threads is not None else []
        command += ["--detector", detector] if detector else []
        command += ["--no-micro"] if args.no_micro else []
        workers[name] = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=root)
    results = {name: [] for name in workers}
    for r in range(args.repeats + 1):  # the first round warms caches and is not counted
        names = list(workers)
        names = names[r % len(names) :] + names[: r % len(names)]
        for name in names:
            workers[name].stdin.write("run\n")
            workers[name].stdin.flush()
            reply = json.loads(workers[name].stdout.readline())
            if r:
                results[name].append(reply)
    for worker in workers.values():
        worker.stdin.close()
        worker.wait()

    print(
        f"{args.clip.name} letterboxed to {width}x{height}, {count} frames, micro-expressions "
        f"{'off' if args.no_micro else 'on'}, {args.repeats} runs per variant taken in turns, "
        f"{describe()}"
    )
    reference = results["every-frame"][0]["frames"]
    first = None
    print(
        f"{'variant':<18} {'frames/s':>8} {'x':>5} {'frames/CPU-s':>12} {'median s':>8} {'detect+decode s':>15} {'micro s':>7} "
        f"{'tracks':>6} {'box IoU':>7} {'same label':>10} {'face diff':>9}"
    )
    for name, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        fps = len(runs[0]["frames"]) / seconds
        cpu_fps = len(runs[0]["frames"]) / statistics.median(r["cpu"] for r in runs)
        first = first or fps
        iou, same, diff = agreement(reference, runs[0]["frames"])
        timing = runs[0]["timing"]
        print(
            f"{name:<18} {fps:>8.1f} {fps / first:>5.2f} {cpu_fps:>12.1f} {seconds:>8.2f} "
            f"{timing.get('decode_and_detect', 0) / 1000:>15.2f} {timing.get('micro_expressions', 0) / 1000:>7.2f} "
            f"{runs[0]['tracks']:>6} {iou:>7.3f} {same:>10.1%} {diff:>9}"
        )


if __name__ == "__main__":
    main()

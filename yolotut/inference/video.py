"""End-to-end FPS on a video: decode -> preprocess -> infer -> NMS -> draw -> write.

Two frame rates are reported, because the published figures use different ones:

* ``fps``: frames / wall time of the whole loop (decode and write included) -- what
  a user of the annotated video experiences;
* ``fps_pipeline``: ``1000 / (preprocess + infer + postprocess ms)`` -- what
  DeepSparse's ``annotate`` script (used by the "180+ FPS" blog) prints on each frame:
  it times only the pipeline call, not decoding, drawing or writing.

The loop runs at batch 1 and reuses one input buffer and one frame buffer, so the
only per-frame allocations left are inside letterbox, the engine and NMS.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from yolotut.errors import InputError
from yolotut.inference.benchmark import CpuContention, load_average, machine_busy
from yolotut.inference.engines import Engine, available_cores
from yolotut.progress import tqdm

STAGES = ("decode", "preprocess", "infer", "postprocess", "draw", "write")

# A fixed, distinct BGR colour per class (the first ten of Ultralytics' palette).
_PALETTE = [
    (56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207),
    (10, 249, 72), (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0),
]


@dataclass
class VideoResult:
    """Frame count, the two frame rates and the mean time of each stage (ms per frame)."""

    source: str
    frames: int
    seconds: float
    fps: float
    fps_pipeline: float
    stage_ms: dict[str, float]
    width: int
    height: int
    source_fps: float
    detections: int
    warmup: int = 0
    load_avg: list[float] | None = None  # 1/5/15-minute load average at the start
    other_cpu_cores: float | None = None  # cores' worth of CPU other processes used meanwhile
    steal_cpu_cores: float | None = None  # cores' worth taken by the hypervisor (VMs only)
    busy: bool = False  # other_cpu_cores high enough to distort the figures
    out_path: str | None = None
    engine_info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _color(cls: int) -> tuple[int, int, int]:
    return _PALETTE[cls % len(_PALETTE)]


def annotate(
    image: np.ndarray, detections: np.ndarray, names: Sequence[str] | None = None, inplace: bool = False
) -> np.ndarray:
    """Draw ``[n, 6]`` detections (x1, y1, x2, y2, conf, cls) with labels on a BGR image."""
    canvas = image if inplace else image.copy()
    if detections is None or len(detections) == 0:
        return canvas
    thickness = max(1, round(sum(canvas.shape[:2]) / 600))
    font_scale = thickness / 3
    for x1, y1, x2, y2, conf, cls in np.asarray(detections, dtype=np.float32):
        c = int(cls)
        color = _color(c)
        p1, p2 = (int(x1), int(y1)), (int(x2), int(y2))
        cv2.rectangle(canvas, p1, p2, color, thickness, lineType=cv2.LINE_AA)
        name = names[c] if names is not None and 0 <= c < len(names) else str(c)
        label = f"{name} {conf:.2f}"
        (tw, th), baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, max(thickness - 1, 1))
        # Label above the box, or inside it when the box touches the top edge.
        above = p1[1] - th - baseline >= 0
        top = p1[1] - th - baseline if above else p1[1]
        cv2.rectangle(canvas, (p1[0], top), (p1[0] + tw, top + th + baseline), color, -1, lineType=cv2.LINE_AA)
        cv2.putText(
            canvas, label, (p1[0], top + th), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (255, 255, 255),
            max(thickness - 1, 1), lineType=cv2.LINE_AA,
        )
    return canvas


def open_video(source: str | Path) -> cv2.VideoCapture:
    """``cv2.VideoCapture`` on a file, with a clear error when it cannot be read."""
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"video {path} does not exist (the demo video: `yolotut fetch demo-video`)")
    # FFmpeg would print its own complaints ("moov atom not found", "partial file") on
    # stderr beside ours; read before the backend's first use, so set it here.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise InputError(
            f"OpenCV cannot open video {path}: not a video file, or a codec this OpenCV build lacks; "
            "give an .mp4 (H.264) file",
            path=path,
        )
    return cap


# A container's frame count can be an estimate; well short of it means the file ends early.
_TRUNCATED_BELOW = 0.9


def run_video(
    engine: Engine,
    source: str | Path,
    out_path: str | Path | None = None,
    conf_thres: float = 0.25,
    iou_thres: float = 0.45,
    max_frames: int | None = None,
    progress: bool = True,
    draw: bool = True,
    warmup: int = 5,
) -> VideoResult:
    """Detect on every frame of ``source``; time each stage; optionally write the annotated video.

    ``warmup`` untimed inferences on a random input run first, so that one-off
    start-up costs (memory planning, JIT-ed kernels) do not count as frame time.
    """
    if engine.batch_size != 1:
        raise ValueError(f"video runs at batch 1 (frame by frame); the engine was built with batch {engine.batch_size}")
    cap = open_video(source)
    width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    source_fps = float(cap.get(cv2.CAP_PROP_FPS)) or 25.0
    n_frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    total = min(n_frames, max_frames) if (n_frames and max_frames) else (max_frames or n_frames)

    writer = None
    if out_path is not None:
        out_path = Path(out_path)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        writer = cv2.VideoWriter(str(out_path), cv2.VideoWriter_fourcc(*"mp4v"), source_fps, (width, height))
        if not writer.isOpened():
            cap.release()
            raise ValueError(f"OpenCV cannot write {out_path} with the mp4v codec; use a .mp4 file name")

    names = engine.names
    buffer = engine.new_input_buffer()
    load = load_average()
    dummy = engine.dummy_input()
    for _ in range(warmup):
        engine.infer(dummy)
    frame = np.empty((height, width, 3), dtype=np.uint8)
    totals_ns = dict.fromkeys(STAGES, 0)
    frames = detections = 0
    clock = time.perf_counter_ns
    bar = tqdm(total=total, desc=f"video {engine.name}", unit="frame", disable=not progress)
    contention = CpuContention()
    contention.start()
    start = clock()
    try:
        while max_frames is None or frames < max_frames:
            t0 = clock()
            ok, frame = cap.read(frame)  # decodes into the existing buffer
            t1 = clock()
            if not ok:
                break
            batch, metas = engine.preprocess([frame], out=buffer)
            t2 = clock()
            pred = engine.infer(batch)
            t3 = clock()
            det = engine.postprocess(pred, metas, conf_thres, iou_thres)[0]
            t4 = clock()
            if draw:
                annotate(frame, det, names, inplace=True)
            t5 = clock()
            if writer is not None:
                writer.write(frame)
            t6 = clock()
            totals_ns["decode"] += t1 - t0
            totals_ns["preprocess"] += t2 - t1
            totals_ns["infer"] += t3 - t2
            totals_ns["postprocess"] += t4 - t3
            totals_ns["draw"] += t5 - t4
            totals_ns["write"] += t6 - t5
            frames += 1
            detections += len(det)
            bar.update()
    finally:
        elapsed_ns = clock() - start
        other_cores = contention.stop()
        bar.close()
        cap.release()
        if writer is not None:
            writer.release()
    if frames == 0:
        raise InputError(f"no frame could be decoded from video {source}: the file is corrupt or empty; fetch or copy it again", path=source)
    if n_frames and (max_frames is None or frames < max_frames) and frames < _TRUNCATED_BELOW * n_frames:
        raise InputError(
            f"video {source}: decoding stopped after {frames} of the {n_frames} frames its header declares "
            f"(truncated or corrupt); fetch or copy it again, or measure the frames it has with --max-frames {frames}",
            path=source,
        )
    stage_ms = {stage: totals_ns[stage] / frames / 1e6 for stage in STAGES}
    pipeline_ms = stage_ms["preprocess"] + stage_ms["infer"] + stage_ms["postprocess"]
    seconds = elapsed_ns / 1e9
    return VideoResult(
        source=str(source),
        frames=frames,
        seconds=seconds,
        fps=frames / seconds,
        fps_pipeline=1000.0 / pipeline_ms,
        stage_ms=stage_ms,
        width=width,
        height=height,
        source_fps=source_fps,
        detections=detections,
        warmup=warmup,
        load_avg=load,
        other_cpu_cores=other_cores,
        steal_cpu_cores=contention.steal_cores,
        busy=machine_busy(other_cores, available_cores()),
        out_path=str(out_path) if out_path is not None else None,
        engine_info=engine.info(),
    )


def running_fps(
    engine: Engine, source: str | Path, window: int = 50, max_frames: int | None = None, warmup: int = 5
) -> dict[str, Any]:
    """The on-screen FPS of the "180+ FPS" blog's ``annotate.py``: per frame, the mean of
    1 / frame time over the last ``window`` frames; and the run's average beside it.

    Each frame is timed from decoding to drawing, as :func:`run_video` times it. Returns
    ``fps`` (frames / total frame time), ``fps_peak`` (the highest running value once
    the window is full, or over the whole run if it is shorter than the window),
    ``frames``, ``window`` and ``running_fps`` (one value per frame).
    """
    if window < 1:
        raise ValueError(f"window is a number of frames: expected >= 1, got {window}")
    cap = open_video(source)
    buffer = engine.new_input_buffer()
    dummy = engine.dummy_input()
    for _ in range(warmup):
        engine.infer(dummy)
    frame_ms: list[float] = []
    recent: deque[float] = deque(maxlen=window)
    running: list[float] = []
    try:
        while max_frames is None or len(frame_ms) < max_frames:
            start = time.perf_counter()
            ok, frame = cap.read()
            if not ok:
                break
            batch, metas = engine.preprocess([frame], out=buffer)
            annotate(frame, engine.postprocess(engine.infer(batch), metas)[0], engine.names, inplace=True)
            frame_ms.append((time.perf_counter() - start) * 1000)
            recent.append(1000 / frame_ms[-1])
            running.append(float(np.mean(recent)))
    finally:
        cap.release()
    if not frame_ms:
        raise ValueError(f"no frame could be decoded from {source}")
    full_windows = running[window - 1:] or running
    return {"fps": 1000 / float(np.mean(frame_ms)), "fps_peak": max(full_windows), "frames": len(frame_ms),
            "window": window, "running_fps": running}

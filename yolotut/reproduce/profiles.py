"""The two run profiles in one table: ``quick`` checks the pipeline in minutes on two CPU
cores, ``full`` is the tutorial as the write-ups ran it.

Each notebook reads its settings with :func:`profile_settings`; a notebook that needs a
different value names it in :data:`NOTEBOOK_SETTINGS`, so the table shows every value
any notebook uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

PROFILES = ("quick", "full")

#: setting -> (quick, full, what it is). ``None`` means "all" (images, frames).
SETTINGS: dict[str, tuple[Any, Any, str]] = {
    "epochs": (1, 50, "training epochs"),
    "max_images": (32, None, "training images (full: all 2471 pistol images)"),
    "steps": (4, None, "optimizer steps per epoch (full: all)"),
    "train_batch_size": (8, 16, "training batch size"),
    "warmup": (10, 25, "untimed runs before timing, batch 1 (the Neural Magic post: 25)"),
    "iterations": (30, 80, "timed runs, batch 1 (the Neural Magic post: 80)"),
    "big_warmup": (3, 25, "untimed runs before timing the large batch"),
    "big_iterations": (10, 80, "timed runs of the large batch"),
    "bench_batch_sizes": ([1, 8], [1, 64], "throughput batch sizes (the posts: 1 and 64)"),
    "video_frames": (40, None, "frames of the demo video timed end to end (full: all)"),
    "val_images": (48, None, "validation images scored for mAP (full: all 500)"),
    "calib_images": (32, 512, "calibration images for one-shot quantization"),
    "upstream_epochs": (1, 50, "epochs of the upstream pruned model that sparse transfer starts from"),
    "qat_epochs": (1, 2, "epochs of quantization-aware training from the dense model (the blog: 2)"),
    "rounds": (2, 5, "interleaved rounds of a side-by-side speed study"),
    "big_batch_variants": (["dense", "pruned-quantized"], None,
                           "notebook 10's models timed at batch 64 (full: all six; the others at batch 1 only)"),
    "max_tries": (1, 3, "tries of a measurement that other processes disturbed"),
}

#: notebook -> setting -> (quick, full): where a notebook departs from :data:`SETTINGS`.
NOTEBOOK_SETTINGS: dict[str, dict[str, tuple[Any, Any]]] = {
    # Two epochs so that the quick run reaches the recipe's QAT epoch and exports INT8.
    "05_pruning_quantization": {"epochs": (2, 50)},
    "06_sparse_transfer_learning": {"epochs": (2, 30)},
    "07_yolov5n_hardswish": {"epochs": (2, 50), "video_frames": (None, None)},
    # Every engine x quantization path runs in every round: fewer runs per setup.
    "09_living_engines": {"calib_images": (32, 300), "val_images": (24, None), "warmup": (5, 25),
                          "iterations": (20, 80), "big_warmup": (1, 3), "big_iterations": (3, 10)},
    # YOLOv5l at 640 px: a dense fp32 batch of 64 takes about 20 s on 2 cores, so few runs,
    # in interleaved rounds (the spread over rounds is in every row).
    "10_neural_magic_table": {"rounds": (2, 3), "warmup": (3, 10), "iterations": (10, 30), "big_warmup": (1, 1),
                              "big_iterations": (1, 3)},
}


def profile_settings(profile: str, notebook: str | None = None, **overrides: Any) -> SimpleNamespace:
    """The settings of ``profile`` for ``notebook``, with every override that is not ``None`` applied."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    column = PROFILES.index(profile)
    values = {name: row[column] for name, row in SETTINGS.items()}
    for name, row in NOTEBOOK_SETTINGS.get(notebook or "", {}).items():
        values[name] = row[column]
    unknown = sorted(set(overrides) - set(values))
    if unknown:
        raise ValueError(f"unknown settings {unknown}; the profiles define {sorted(values)}")
    values.update({name: value for name, value in overrides.items() if value is not None})
    return SimpleNamespace(**values)


def profile_table(notebooks: Mapping[str, Mapping[str, tuple[Any, Any]]] | None = None) -> list[dict[str, Any]]:
    """One row per setting (quick, full, meaning) and per notebook departure, for docs and notebooks."""
    rows = [{"setting": name, "quick": q, "full": f, "meaning": meaning} for name, (q, f, meaning) in SETTINGS.items()]
    for notebook, departures in (NOTEBOOK_SETTINGS if notebooks is None else notebooks).items():
        rows += [
            {"setting": f"{name} ({notebook})", "quick": q, "full": f, "meaning": SETTINGS[name][2]}
            for name, (q, f) in departures.items()
        ]
    return rows

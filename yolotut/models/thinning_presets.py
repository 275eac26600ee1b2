"""Named thinnings of YOLOv5 v6.x, as :class:`~yolotut.models.thinning.ThinningConfig` values.

Block numbers are YOLOv5 v6's layer indices: the backbone's C3 blocks are 2, 4, 6 and 8,
its strided convolutions after the stem 3, 5 and 7, the head's C3 blocks 13, 17, 20 and
23. Speed figures are DeepSparse INT8 against the unthinned INT8 model on the same
machine (how they were measured, and when: ``docs/lab-notes/``).
"""

from __future__ import annotations

from collections.abc import Mapping

from yolotut.models.thinning import ThinningConfig

__all__ = [
    "BACKBONE_SPLIT", "FIRST_C3_WHOLE", "HALVED_FIRST_C3_WHOLE", "HEAD_HEAVY", "STRIDED_C3",
    "STRIDED_C3_BOTTLENECKS", "STRIDED_HALVED", "STRIDED_HEAD_HEAVY",
]

# About the multiply-adds that halving every C3 branch and bottleneck removes (37 % of
# YOLOv5n's), taken more from the head, whose channels do less damage when they go
# (benchmarks/thinning_damage.py measures that per group).
HEAD_HEAVY = ThinningConfig(c3=0.75, bottleneck=0.5, module_keep={m: {"c3": 0.25, "bottleneck": 0.25} for m in (13, 17, 20, 23)})

# Block 2 (stride 4) kept whole: its groups move the features the head reads the most,
# and on AVX-512 VNNI its 16 -> 8 channels ran no faster.
FIRST_C3_WHOLE: Mapping[int, Mapping[str, float]] = {2: {"c3": 1.0, "bottleneck": 1.0}}
# Block 2 whole, blocks 6 and 8 (the least damage per group in the backbone) to a
# quarter, the rest halved: as fast as halving everything on AVX2, and less accurate.
BACKBONE_SPLIT = ThinningConfig(c3=0.5, bottleneck=0.5, module_keep={**FIRST_C3_WHOLE,
                                                                    **{m: {"c3": 0.25, "bottleneck": 0.25} for m in (6, 8)}})

# The strided convolutions after the stem halved (kind "conv"): about 14 % of YOLOv5n's
# conv weights, 1.09x. The stem itself (blocks 0, 1) ran no faster thinned.
STRIDED_HALVED: Mapping[int, Mapping[str, float]] = {m: {"conv": 0.5} for m in (3, 5, 7)}
# C3 branches and strided convolutions halved, the bottlenecks' hidden channels whole: 1.28x.
STRIDED_C3 = ThinningConfig(c3=0.5, module_keep=STRIDED_HALVED)
# Every C3 branch, bottleneck and strided convolution halved (notebook 05's YOLOv5s):
# 1.72x for YOLOv5s, where the C3 blocks alone gave 1.44x.
STRIDED_C3_BOTTLENECKS = ThinningConfig(c3=0.5, bottleneck=0.5, module_keep=STRIDED_HALVED)
# HEAD_HEAVY with the strided convolutions halved: 1.27x.
STRIDED_HEAD_HEAVY = ThinningConfig(c3=0.75, bottleneck=0.5, module_keep={**HEAD_HEAVY.module_keep, **STRIDED_HALVED})
# Every C3 branch and bottleneck halved except block 2's (notebook 07's YOLOv5n-Hardswish):
# 1.27x / 1.31x the blog author's model, against 1.23x / 1.28x with block 2 halved too.
HALVED_FIRST_C3_WHOLE = ThinningConfig(c3=0.5, bottleneck=0.5, module_keep=FIRST_C3_WHOLE)

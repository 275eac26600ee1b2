"""How much does removing channels change what a pretrained YOLOv5 hands its head?

Thins the COCO ``yolov5n.pt`` (with the Hardswish swap the tutorial trains) one
channel group at a time, and all groups together, and measures the relative error
``||f_thinned - f_dense|| / ||f_dense||`` of the three feature maps the ``Detect``
head reads (P3, P4, P5) on pistol validation images. Each group keeps
``round(width * keep)`` channels (no rounding to multiples of 8, so every group loses
some). No training: this is the damage
fine-tuning has to repair. Four ways of choosing the channels to remove are compared:

* ``smallest-norm``: the smallest BatchNorm-folded filter norms go;
* ``largest-norm``: the *largest* go (thinning's default, chosen from this measurement);
* ``random``: a random choice (seeded);
* ``damage``: the channels whose removal alone moved the features least
  (``thinning.removal_damage``), measured on the first ``--damage-images`` *training*
  images, so that the validation images here judge it as they judge the others.

(``yolotut.models.thinning.CRITERIA``; ``ThinningConfig.criterion`` chooses one for
training.) If ``smallest-norm`` is not clearly better than ``random``, filter norms say
little about which channels this model can spare.

    python benchmarks/thinning_damage.py --keep 0.75 --images 32
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import torch

from yolotut.models import thinning
from yolotut.training.config import TrainConfig
from yolotut.training.data import create_dataloader, load_dataset_config
from yolotut.training.distill import detect_features
from yolotut.training.start import initial_model

CRITERIA = thinning.CRITERIA


def damage(dense: torch.nn.Module, images: torch.Tensor, reference: list[torch.Tensor], names: list[str], keep: float,
           criterion: str, seed: int, removal: dict[str, torch.Tensor]) -> list[float]:
    """Relative error per Detect level after removing channels of the groups ``names``."""
    model = copy.deepcopy(dense)
    # multiple=1: round(width * keep) channels stay, so every group loses some.
    config = thinning.ThinningConfig(bottleneck=keep, c3=keep, sppf=keep, multiple=1, criterion=criterion, seed=seed)
    # The damage criterion reuses the measurement made once for all groups.
    thinning.apply_plan(model, thinning.plan(model, config, names, damage=removal if criterion == "damage" else None))
    return thinning.feature_errors(detect_features(model.eval(), images), reference)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=float, default=0.75, help="fraction of each group's channels to keep")
    parser.add_argument("--images", type=int, default=32, help="pistol validation images")
    parser.add_argument("--imgsz", type=int, default=416)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--damage-images", type=int, default=8, help="training images the damage criterion measures on")
    parser.add_argument("--out", default="outputs/benchmarks/thinning_damage.json")
    args = parser.parse_args()
    if not 0 < args.keep < 1:
        parser.error("--keep is the fraction of channels to keep: 0 < keep < 1")

    def first_images(split: str, count: int) -> torch.Tensor:
        loader, _ = create_dataloader(load_dataset_config("pistols"), split, imgsz=args.imgsz, batch_size=16, augment=False,
                                      shuffle=False, workers=0, max_images=count)
        return torch.cat([batch[0] for batch in loader]).float() / 255

    images = first_images("valid", args.images)
    dense = initial_model(TrainConfig(weights="yolov5n", activation="hardswish"), ["pistol"]).eval()
    reference = detect_features(dense, images)
    names = [g.name for g in thinning.channel_groups(dense)]
    removal = thinning.removal_damage(dense, first_images("train", args.damage_images))

    rows = []
    for label, selected in [(name, [name]) for name in names] + [("all groups", names)]:
        row = {"groups": label}
        for criterion in CRITERIA:
            row[criterion] = [round(e, 3) for e in damage(dense, images, reference, selected, args.keep, criterion, args.seed, removal)]
        rows.append(row)
        print(f"{label:18s} " + "  ".join(f"{c} {sum(row[c]) / 3:.3f}" for c in CRITERIA), flush=True)
    singles = rows[:-1]
    summary = {c: round(sum(sum(r[c]) / 3 for r in singles) / len(singles), 3) for c in CRITERIA}
    better = sum(sum(r["smallest-norm"]) < sum(r["random"]) for r in singles)
    print(f"mean relative error over single groups: {summary}; smallest-norm beats random in {better} of {len(singles)} groups")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"keep": args.keep, "images": images.shape[0], "damage_images": args.damage_images, "rows": rows, "mean_single_group": summary,
                               "smallest_norm_beats_random": [better, len(singles)]}, indent=1) + "\n")


if __name__ == "__main__":
    main()

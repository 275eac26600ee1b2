"""Does a short CPU fine-tune of the COCO yolov5n.pt learn pistols? mAP before vs after.

The starting point is yolov5n.pt with a fresh one-class Detect head (what
`yolotut train` builds from a COCO checkpoint); its mAP on pistols is near zero.
A few epochs of dense fine-tuning on a subset must raise mAP@0.5 on held-out
(valid) pistol images. Prints one JSON object on the last line.

    python benchmarks/finetune_gain.py --epochs 3 --max-images 256 --val-images 100
"""

from __future__ import annotations

import argparse
import json
import time

from yolotut.engines import TorchEngine
from yolotut.evaluate import evaluate
from yolotut.train import TrainConfig, initial_model, load_trained_model, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-images", type=int, default=256)
    parser.add_argument("--val-images", type=int, default=100)
    parser.add_argument("--imgsz", type=int, default=416)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", default="outputs/benchmarks/finetune_gain")
    args = parser.parse_args()

    config = TrainConfig(
        weights="yolov5n",
        recipe="dense-finetune",
        epochs=args.epochs,
        imgsz=args.imgsz,
        batch_size=args.batch_size,
        max_images=args.max_images,
        warmup_epochs=min(1.0, args.epochs / 3),
        out_dir=args.out,
    )
    start_model = initial_model(config, ["pistol"]).eval()
    before = evaluate(TorchEngine(start_model, imgsz=args.imgsz), "pistols", max_images=args.val_images)

    started = time.perf_counter()
    result = train(config)
    seconds = time.perf_counter() - started
    after = evaluate(TorchEngine(load_trained_model(result.final_checkpoint), imgsz=args.imgsz), "pistols", max_images=args.val_images)

    summary = {
        "epochs": args.epochs,
        "train_images": args.max_images,
        "val_images": before["images"],
        "train_seconds": round(seconds, 1),
        "map50_before": round(before["map50"], 4),
        "map50_after": round(after["map50"], 4),
        "map50_95_before": round(before["map50_95"], 4),
        "map50_95_after": round(after["map50_95"], 4),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

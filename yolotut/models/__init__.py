"""YOLOv5 v6.x models: blocks, yaml-driven builder, all checkpoint I/O (restricted loading), thinning."""

from yolotut.models.checkpoint import (
    CheckpointError,
    UnsafeCheckpointError,
    load_checkpoint,
    load_model,
    load_trained_model,
    load_training_checkpoint,
    read_checkpoint,
    save_checkpoint,
    save_training_checkpoint,
)
from yolotut.models.common import C3, SPPF, Bottleneck, Concat, Conv, Detect
from yolotut.models.yolo import SIZES, DetectionModel, build_model, default_config, model_from_config

__all__ = [
    "C3",
    "SIZES",
    "SPPF",
    "Bottleneck",
    "CheckpointError",
    "Concat",
    "Conv",
    "Detect",
    "DetectionModel",
    "UnsafeCheckpointError",
    "build_model",
    "default_config",
    "load_checkpoint",
    "load_model",
    "load_trained_model",
    "load_training_checkpoint",
    "model_from_config",
    "read_checkpoint",
    "save_checkpoint",
    "save_training_checkpoint",
]

"""Training: datasets and augmentation, the YOLOv5 loss, distillation, and the loop that applies SparseML recipes."""

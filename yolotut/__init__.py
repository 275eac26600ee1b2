"""yolotut: YOLOv5 on CPUs with SparseML + DeepSparse."""
__version__ = "0.1.0"

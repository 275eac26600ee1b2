"""Inference: ONNX export, sparsity, the engines behind one interface, mAP, video and benchmarks."""

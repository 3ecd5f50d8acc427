"""Static-shape export: ONNX graphs per stage, TensorRT FP16 plans, and the manifest that ties them together."""

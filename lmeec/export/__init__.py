"""Static-shape export: ONNX graphs per stage, the manifest that ties them together, the FP16 precision policy,
FP16 ONNX and the TensorRT builder.

Imports `lmeec.model` (and `lmeec.files`) only; no command-line code (that is `lmeec.cli`).
"""

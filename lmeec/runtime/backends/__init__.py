"""The concrete backends, one module each: `torch` (the reference stages), `ort` (ONNX Runtime with IOBinding),
`trt` (TensorRT plans). They are found through `lmeec.runtime.backend.REGISTRY`; each imports only the
interface in `lmeec.runtime.backend`, never the other way round."""

"""Kernels for the step's glue: frame pre-processing (PIL-exact bicubic), source-mask resize, logits to
native-size mask, bank compression. Each has a Triton kernel (CUDA, or the Triton interpreter on CPU
tensors) and a pure-torch fallback computing the same thing, so machines without Triton run the same step.

Used by `lmeec.runtime`; imports only `lmeec.model` (for the reference rules) and never the runtime.
"""

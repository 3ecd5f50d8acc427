"""GPU kernels for the step's glue (frame pre-processing, mask resizes, bank compression), each beside a CPU
reference that the tests compare it against. Empty until the GPU-step work lands.

Used by `lmeec.runtime`; imports only `lmeec.model` (for the reference rules) and never the runtime.
"""

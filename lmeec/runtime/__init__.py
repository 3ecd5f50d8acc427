"""Runtime: the exported stages driven frame by frame with preallocated buffers and fixed-size memory.

The backend interface and its registry (`backend`), the concrete backends (`backends/`), the per-frame
`Pipeline`, the fixed-size bank and pointer ring (`ring`), frame sources (`takes`) and allocation helpers
(`alloc`). Imports model and export (and later kernels); never bench, eval or cli.
"""

"""Runtime: the exported stages driven frame by frame with preallocated buffers and fixed-size memory.

The backend interface and its registry (`backend`), the concrete backends (`backends/`), the per-frame
`Pipeline`, the fixed-size bank and pointer ring (`ring`), pre/post-processing on the host or the device
(`frame_io`), CUDA graphs per step variant (`graph`), the step options (`step_options`), frame sources
(`takes`) and allocation helpers (`alloc`). Imports model, export and kernels; never bench, eval or cli.
"""

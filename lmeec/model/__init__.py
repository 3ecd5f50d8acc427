"""PyTorch reference of LM-EEC on sam2 modules: the oracle every backend is measured against.

Presets (`config`), the network on `sam2.SAM2Base` (`network`, `rope`, `moe`), the banks and pointer ring
(`memory`), static-shape stage graphs (`stages`), checkpoints, pre-processing and the `Correspondence`
tracker. Imports only torch, sam2 and `lmeec.files`: every other package builds on this one.
"""

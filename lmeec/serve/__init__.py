"""Serving several headsets from one box: a Triton Inference Server model whose sessions each own one
preallocated slot (a `Pipeline` with its bank ring) over one opened backend.

`sessions` (the fixed table of slots: open, step, end, time out, refuse when full), `model` (the Triton
Python-backend model over that table), `triton` (the model repository lmeec writes and the bundled
`tritonserver` it launches on loopback) and `client` (a `tritonclient` headset stream). May import model,
export, runtime and eval; only `lmeec.cli` imports it.
"""

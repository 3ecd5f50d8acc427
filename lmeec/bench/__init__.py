"""Benchmarks of the runtime: the runner (`runner`), section timers (`timers`), frame sets and cached
exports (`inputs`), environment facts (`environment`), the FLOP cost model (`costmodel`), tables and plots
(`report`) and the FP16-policy validation (`precision`).

May import model, export, runtime and eval (for synthetic takes); nothing but `lmeec.cli` imports it.
"""

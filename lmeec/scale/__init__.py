"""Scale-out: a split's evaluation units run whole on Ray actors, each holding one opened backend, with a
write-once journal of finished units so a stopped run continues where it was.

`journal` (finished units on disk, tied to the run's settings) and `scheduler` (`RayConfig`, `run_units`).
The work a unit does is passed in by the caller, so this package stays generic. May import model, export,
runtime and eval; only `lmeec.cli` imports it. Ray is an optional extra (`pip install lmeec[ray]`).
"""

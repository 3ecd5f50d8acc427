"""EgoExo4D correspondence: data formats, metrics, submissions and their validation, synthetic takes, baselines.

Independent of the model and the runtime (imports only `lmeec.files`, never torch or sam2), so scoring runs
anywhere; `lmeec.cli` joins it to the runtime.
"""

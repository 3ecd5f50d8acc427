"""EgoExo4D correspondence: data formats, metrics, synthetic takes and baselines."""

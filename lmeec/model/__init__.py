"""PyTorch reference of LM-EEC on sam2 modules: the oracle every backend is measured against."""

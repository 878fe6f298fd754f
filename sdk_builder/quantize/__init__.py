"""Quantization: recipes as records, PT2E, calibration, the drop budget, layer-wise diagnosis, parity numbers."""

"""Plain-Python domain package of dlc-platform (no Dagster): DLC files and models,
state-vector methods, processing, warehouse, inference, synthetic data."""

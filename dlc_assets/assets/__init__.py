"""Dagster assets, one module per asset group: registry, tracking, imaging, training,
model review, exports (plus the inline QC pictures they share). Wiring only: the science
lives in ``dlc_tracking``."""

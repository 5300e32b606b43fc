"""The registry: DLC models (identity derived from their projects or outputs), the
body-part vocabulary, tracking types, state-vector methods, pairings, defaults and
processing parameter sets."""

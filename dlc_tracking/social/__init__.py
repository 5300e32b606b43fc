"""Several animals in one video: subject mapping, identity checks, per-individual
tracking and social measures (plain functions, no Dagster)."""

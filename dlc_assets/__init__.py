"""Dagster definitions of dlc-platform: assets, asset checks, jobs, partitions."""

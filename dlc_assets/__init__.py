"""Dagster definitions of dlc-platform: assets, asset checks, jobs, partitions."""

import os

# OpenMP threads that busy-wait (the default) make PyTorch several times slower as soon
# as another process competes for the cores (steps of concurrent runs do); this must be
# set before torch is imported, which happens only inside steps.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

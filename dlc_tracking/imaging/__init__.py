"""Imaging sessions (two-photon / miniscope): imaging frame times from ScanImage tifs,
Suite2p's ops.npy or a frame-times file, sync TTLs on a DAQ clock, and processed tracking
resampled at every imaging frame. Plain Python, no Dagster; see docs/imaging.md."""

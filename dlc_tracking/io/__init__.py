"""Files the platform reads and writes: DLC outputs (h5, csv, pickles), videos, YAML."""

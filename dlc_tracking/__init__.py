"""Plain-Python domain package of dlc-platform: DLC files, models, methods, processing, warehouse."""

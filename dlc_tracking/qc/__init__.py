"""Quality-control pictures (PNG bytes, matplotlib Agg) and the labeled-video renderer.

Plain Python: ``dlc_assets.assets.qc_plots`` turns the PNGs into inline materialization
metadata; analysts can call the same functions in a notebook.
"""

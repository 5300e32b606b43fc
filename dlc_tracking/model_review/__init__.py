"""Where a model fails across the archive, and rolling out a better version (no Dagster).

Modules
-------
frame_quality  per-frame flags of one recording's predictions: low likelihood, jumps,
               disagreement in px with another version's predictions
selection      the N most informative frames of a model across all its recordings,
               spread over recordings and time (DuckDB over the warehouse, bounded memory)
extraction     those frames written into the DLC project the way DeepLabCut's
               extract_outlier_frames does (labeled-data/<video>/img*.png +
               machinelabels-iter<N>.h5), for napari-deeplabcut
agreement      how two versions differ per recording x body part (model_agreement)
version_predictions  every version's predictions of a recording kept in the warehouse
               (``model_predictions``), and a recording's frame flags against them
comparison     running a new version on a sample of recordings (model_predictions)
promotion      making a new version the model of an old one's recordings (registry
               ``promotions:``), keeping the old predictions, choosing what to re-run
"""

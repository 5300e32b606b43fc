"""Jobs: process one recording (its partitioned assets), and refresh the registry tables."""

import dagster as dg

process_recording_job = dg.define_asset_job(
    "process_recording",
    selection=dg.AssetSelection.groups("tracking"),
    description="recordings -> dlc_predictions -> raw_state_vectors -> processed_tracking "
    "for one recording (partition).",
)

update_registry_job = dg.define_asset_job(
    "update_registry",
    selection=dg.AssetSelection.groups("registry") - dg.AssetSelection.assets("registry_file"),
    description="Materialize the registry tables (models, body parts, methods, pairings).",
)

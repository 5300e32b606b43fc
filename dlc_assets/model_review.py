"""Model review in Dagster: the per-recording ``frame_quality`` asset (in the
process_recording job, after dlc_predictions) and ``model_agreement`` (per recording,
reported by ``dlc-platform models compare`` with the comparison picture).

Wiring only: the science lives in ``dlc_tracking.model_review``.
"""

import dagster as dg

from dlc_assets.partitions import recordings_partitions
from dlc_assets.schemas import column_schema
from dlc_assets.tracking import GROUP, KINDS, _info, clear_failures, dlc_predictions
from dlc_assets.worker_info import worker_metadata
from dlc_tracking.model_review.frame_quality import FrameQualityParams, summarize
from dlc_tracking.model_review.versions import recording_frame_quality
from resources import DataRoot, WarehouseResource

DEFAULT_CUTOFF = 0.6


@dg.asset(
    group_name=GROUP, partitions_def=recordings_partitions, deps=[dlc_predictions],
    kinds=KINDS, metadata=column_schema("frame_quality"),
    description="Frames the recording's model may have got wrong (one row per flagged "
    "frame): body parts below the method's likelihood cutoff or missing, jumps, and "
    "disagreement with another version's predictions of the recording (model_predictions). "
    "`dlc-platform models review MODEL` picks the frames to relabel from it.",
)
def frame_quality(context: dg.AssetExecutionContext, data_root: DataRoot,
                  warehouse: WarehouseResource) -> dg.MaterializeResult:
    info = _info(context, data_root)
    rid = info.recording_id
    store = warehouse.get()
    with clear_failures(rid):
        method = data_root.registry().methods.get(info.method_name) if info.method_name \
            else None
        params = FrameQualityParams(
            likelihood_cutoff=method.likelihood_cutoff if method is not None else DEFAULT_CUTOFF)
        rows = recording_frame_quality(store, rid, params,
                                       (info.video.width_px, info.video.height_px))
    store.write_partition("frame_quality", rid, rows)
    compared = rows["compared_model"].dropna()
    return dg.MaterializeResult(metadata={
        "model": info.model_name, **summarize(rows, info.video.n_frames),
        "compared_model": str(compared.iloc[0]) if len(compared) else "none",
        "likelihood_cutoff": params.likelihood_cutoff,
        "jump_threshold_px": round(params.jump_threshold(info.video.width_px,
                                                         info.video.height_px), 2),
        "disagreement_threshold_px": params.disagreement_px,
        **worker_metadata(),
    })


model_agreement = dg.AssetSpec(
    "model_agreement", group_name="model_review", partitions_def=recordings_partitions,
    deps=[frame_quality], kinds=KINDS, metadata=column_schema("model_agreement"),
    description="How a new model version differs from the recording's current one (median "
    "and p95 distance in px, share of frames above the threshold, change in low-likelihood "
    "share and in distance travelled, per body part), with a picture of the frame where "
    "they differ most (red circles: old, green crosses: new). Reported by `dlc-platform "
    "models compare OLD NEW` for each recording it compares.",
)

review_assets = [frame_quality, model_agreement]

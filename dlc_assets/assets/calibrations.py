"""The rigs' calibrations (docs/3d.md, section 2): ``camera_calibrations``, one partition per
rig and calibration day (``<rig>__<YYYY-MM-DD>``), from the folder
``<data root>/calibrations/<rig>/<YYYY-MM-DD>/``.

Wiring only: the science is dlc_tracking.multiview.calibration_store (folder layout,
calibration, the rows) on aniposelib. Bad input (a board never found, cameras the rig
lacks) fails before anything is written; the calibration.toml is written atomically, then
its rows.
"""

import hashlib

import dagster as dg

from dlc_assets.assets.tracking import clear_failures
from dlc_assets.execution.worker_info import worker_metadata
from dlc_assets.partitions import calibrations_partitions
from dlc_assets.schemas import column_schema
from resources import DataRoot, WarehouseResource

GROUP = "calibration"
MAX_BOARD_REPROJECTION_ERROR_PX = 1.5
"""Mean reprojection error of a camera's board corners above which the calibration check
fails: a well-focused board gives a few tenths of a pixel; above 1.5 px the board
definition, a blurred or moving board, or a camera moved during filming is likely."""

CALIBRATION_CHECKS = [
    dg.AssetCheckSpec(
        "reprojection_error_within_threshold", asset="camera_calibrations", blocking=False,
        description="Every camera's mean reprojection error of the board corners is at most "
        f"{MAX_BOARD_REPROJECTION_ERROR_PX:g} px (imports that do not record it pass, "
        "with a note)."),
]


@dg.asset(
    group_name=GROUP, partitions_def=calibrations_partitions,
    kinds={"aniposelib", "parquet", "duckdb"}, check_specs=CALIBRATION_CHECKS,
    metadata=column_schema("camera_calibrations"),
    description="A rig's calibration of one day, from <data root>/calibrations/<rig>/"
    "<YYYY-MM-DD>/: board videos (ChArUco or checkerboard, one per camera, calibration.yaml "
    "naming the board) calibrated with aniposelib, or an Anipose calibration.toml / "
    "DeepLabCut 3D project imported unchanged; world axes from floor/ images of the board "
    "on the floor. Written as an Anipose calibration.toml (warehouse calibrations/<rig>/"
    "<YYYY-MM-DD>/) and one camera_calibrations row per camera. Sessions of the rig on or "
    "after that day use it (docs/3d.md).",
)
def camera_calibrations(context: dg.AssetExecutionContext, data_root: DataRoot,
                        warehouse: WarehouseResource) -> dg.MaterializeResult:
    from dlc_tracking.multiview.calibration_store import (
        CalibrationStore,
        calibrate_folder,
        calibration_rows,
        parse_calibration_key,
        write_toml_atomic,
    )

    key = context.partition_key
    with clear_failures(key):
        rig_name, day = parse_calibration_key(key)
        store = CalibrationStore.at(data_root.root(), warehouse.get().root)
        folder = store.folder(rig_name, day)
        rig = data_root.registry().camera_rig(rig_name, str(folder.path))
        calibration = calibrate_folder(folder, rig)
    path = write_toml_atomic(calibration, store.result_path(rig_name, day))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    rows = calibration_rows(calibration, rig_name, day, path, digest)
    db = warehouse.get()
    db.write_partition("camera_calibrations", key, rows)
    db.ensure_catalog()
    errors = {c: e for c, e in calibration.reprojection_error_px.items() if e is not None}
    too_large = {c: e for c, e in errors.items() if e > MAX_BOARD_REPROJECTION_ERROR_PX}
    missing = [c for c in calibration.camera_names if c not in errors]
    if too_large:
        worst = max(too_large, key=too_large.get)
        check_text = (f"camera {worst!r}: mean reprojection error {too_large[worst]:.2f} px > "
                      f"{MAX_BOARD_REPROJECTION_ERROR_PX:g} px ({folder.path}). Check the board "
                      "definition in calibration.yaml against the printed board (squares, "
                      "square_mm, dictionary), that the board is flat, sharp and still enough, "
                      "and that no camera moved; film it again.")
    elif missing:
        check_text = f"not recorded by the {calibration.source} source for {missing}"
    else:
        check_text = None
    return dg.MaterializeResult(
        metadata={
            "rig": rig_name, "date": day.isoformat(), "source": calibration.source,
            "cameras": ", ".join(calibration.camera_names), "axes": calibration.axes,
            "calibration": dg.MetadataValue.path(str(path)), "sha256": digest,
            "reprojection_error_px_per_camera": {c: round(float(e), 3)
                                                 for c, e in errors.items()},
            "folder": dg.MetadataValue.path(str(folder.path)),
            **worker_metadata(),
        },
        check_results=[dg.AssetCheckResult(
            check_name="reprojection_error_within_threshold", passed=not too_large,
            severity=dg.AssetCheckSeverity.ERROR, description=check_text,
            metadata={"max_reprojection_error_px": max(errors.values(), default=0.0),
                      "threshold_px": MAX_BOARD_REPROJECTION_ERROR_PX})],
    )


calibrate_rig_job = dg.define_asset_job(
    "calibrate_rig", selection=dg.AssetSelection.assets(camera_calibrations),
    description="camera_calibrations for one rig and day (partition <rig>__<YYYY-MM-DD>).")

calibration_assets = [camera_calibrations]
calibration_jobs = [calibrate_rig_job]

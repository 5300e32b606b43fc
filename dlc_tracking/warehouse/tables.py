"""Table schemas of the warehouse (pyarrow types, units, descriptions), its views and macros."""


from dataclasses import dataclass, replace

import pyarrow as pa

from dlc_tracking.tracking.summaries import COVERAGE_BIN_CM

# ----------------------------------------------------------------------------- schemas


@dataclass(frozen=True)
class Column:
    """One column of a warehouse table.

    Attributes
    ----------
    name : str
        Column name (carries its unit: ``x_cm``, ``time_s``...).
    type : pyarrow.DataType
        Stored type.
    description : str
        What the column holds (goes into ``docs/warehouse.md``).
    unit : str
        Unit, "" when none.
    nullable : bool
        Whether NULL is allowed (NaN in float columns is stored as NULL).
    allowed : tuple[str, ...] or None
        The only values allowed, for categorical text columns.
    optional : bool
        Added to the table after it existed, for one kind of recording only (the 3D
        columns of processed_tracking, the camera of predictions): a writer without it may
        leave it out, and the file is then stored without it (exactly as before the column
        existed), as it is when the writer gives only NULLs; readers and views see NULL
        there. Values a writer gives are validated as in any column.
    """

    name: str
    type: pa.DataType
    description: str
    unit: str = ""
    nullable: bool = True
    allowed: tuple[str, ...] | None = None
    optional: bool = False


@dataclass(frozen=True)
class TableSpec:
    """A warehouse table: columns in order, and whether it is partitioned by recording.

    Attributes
    ----------
    name : str
        Table (and view) name.
    description : str
        What one row is.
    columns : tuple[Column, ...]
        Columns in stored order.
    partitioned : bool
        One Parquet file per partition key (the ``partition_column`` value).
    partition_column : str or None
        Column whose value every row of a partition must equal the partition key.
    """

    name: str
    description: str
    columns: tuple[Column, ...]
    partitioned: bool = True
    partition_column: str | None = "recording_id"

    @property
    def schema(self) -> pa.Schema:
        """The pyarrow schema (all fields nullable except declared NOT NULL ones)."""
        return pa.schema([pa.field(c.name, c.type, nullable=c.nullable)
                          for c in self.columns])

    @property
    def column_names(self) -> list[str]:
        """Column names in stored order."""
        return [c.name for c in self.columns]


_STR, _F64, _I64, _I32, _BOOL = pa.string(), pa.float64(), pa.int64(), pa.int32(), pa.bool_()
_TS = pa.timestamp("us", tz="UTC")


def _c(name: str, type_: pa.DataType, description: str, unit: str = "",
       nullable: bool = True, allowed: tuple[str, ...] | None = None,
       optional: bool = False) -> Column:
    return Column(name, type_, description, unit, nullable, allowed, optional)


_RID = _c("recording_id", _STR, "Recording id `<subject>__<session>__<video stem>` "
          "(the Dagster partition key).", nullable=False)
_MODEL = _c("model_name", _STR, "Registered DLC model (registry name).", nullable=False)
_METHOD = _c("method_name", _STR, "State-vector method (registry name).", nullable=False)
_PARAMS_NAME = _c("params_name", _STR, "Processing parameter set (registry name).",
                  nullable=False)
_PARAMS_HASH = _c("params_hash", _STR, "Hash of the processing parameters (provenance).",
                  nullable=False)
_FRAME = _c("frame", _I64, "Video frame number, from 0.", nullable=False)
_TIME = _c("time_s", _F64, "Frame time from the recording start (timestamp file, or "
           "frame / fps).", "s")
_PART = _c("body_part", _STR, "Canonical body-part name (snake_case).", nullable=False)
# Multi-camera recordings (docs/3d.md) write into the same tables as one camera, with
# these columns; single-camera files are stored without them (read as NULL).
_CAMERA = _c("camera", _STR, "Camera of a multi-camera recording (session.yaml `cameras:`) "
             "these 2D rows come from; NULL for a single-camera recording. One camera: "
             "`WHERE camera = 'top'` (docs/3d.md).", optional=True)
_TRACKING_3D = (
    _c("z_cm", _F64, "Height of the position above the floor (world frame of the "
       "calibration, z up); NULL for single-camera recordings.", "cm", optional=True),
    _c("pitch_deg", _F64, "Head pitch, nose up positive (docs/conventions.md, 3D); NULL "
       "for single-camera recordings and without a point ahead of the ears.", "deg",
       optional=True),
    _c("roll_deg", _F64, "Head roll, left ear up positive; NULL for single-camera "
       "recordings and without ears and a front point.", "deg", optional=True),
    _c("speed_3d_cm_s", _F64, "3D speed of the position (central differences, like "
       "speed_cm_s); NULL for single-camera recordings.", "cm/s", optional=True),
)
MULTI_CAMERA_COLUMNS = frozenset(["camera", "cameras", *(c.name for c in _TRACKING_3D)])
"""Columns only multi-camera recordings fill (optional: absent from single-camera files)."""

TABLES: dict[str, TableSpec] = {t.name: t for t in [
    TableSpec("recordings", "One row per recording (a video of a session): video facts, "
              "session metadata, and its model + method assignment (the seed's RecordingDLC).",
              (_RID,
               _c("subject", _STR, "Subject (animal) id, from the session folder.", nullable=False),
               _c("session", _STR, "Session folder name.", nullable=False),
               _c("video_path", _STR, "Absolute path of the video file."),
               _c("video_file", _STR, "Video file name."),
               _c("tracking_type", _STR, "Kind of recording (openfield, wheel, ...)."),
               _c("start_time", _TS, "Recording start (time zone aware, stored as UTC)."),
               _c("n_frames", _I64, "Frames in the video.", "frames"),
               _c("fps", _F64, "Frame rate.", "Hz"),
               _c("width_px", _I32, "Frame width.", "px"),
               _c("height_px", _I32, "Frame height.", "px"),
               _c("duration_s", _F64, "Video duration.", "s"),
               _c("codec", _STR, "Video codec (FourCC / ffprobe name)."),
               _c("camera_view", _STR, "Camera position: 'above' the arena or 'below' it "
                  "(mirrored image)."),
               _c("pixels_per_cm", _F64, "Calibration from session.yaml; NULL when "
                  "calibrated from the arena size.", "px/cm"),
               _c("arena_shape", _STR, "Arena shape (rectangle, circle, ...)."),
               _c("arena_width_cm", _F64, "Arena width (x).", "cm"),
               _c("arena_height_cm", _F64, "Arena height (y, depth in the image).", "cm"),
               _c("has_timestamps", _BOOL, "Frame times come from a per-frame timestamp file."),
               _c("model_name", _STR, "Assigned DLC model (registry name); NULL when none "
                  "applies."),
               _c("method_name", _STR, "State-vector method (registry name); NULL when "
                  "skipped."),
               _c("session_yaml_sha", _STR, "SHA-256 of session.yaml (provenance)."),
               _c("state_vector_status", _STR, "'supported': state vectors are computed; "
                  "'skipped': predictions only (see status_reason).",
                  allowed=("supported", "skipped")),
               _c("status_reason", _STR, "Why the state vector is skipped; NULL when "
                  "supported."),
               _c("has_video", _BOOL, "The video is in the session folder; false for a "
                  "recording declared by its DLC outputs (video archived elsewhere: "
                  "ingest-only, no inference, no labeled video)."),
               _c("source", _STR, "Where the predictions come from: 'inference' (DLC run "
                  "by the platform), 'manual' (outputs in dlc_<stem>/), 'outputs_only' (no "
                  "video here).", allowed=("inference", "manual", "outputs_only")),
               _c("fps_source", _STR, "Where fps comes from: 'video' (container), "
                  "'session.yaml' (`fps:` override) or 'dlc_metadata' (outputs only); a "
                  "multi-camera take's may be 'frame_times' (its cameras' frame times).",
                  allowed=("video", "session.yaml", "dlc_metadata", "frame_times")),
               _c("video_facts_source", _STR, "Where n_frames and the frame size come from: "
                  "'video', 'session.yaml' or 'dlc_metadata'; 'predictions' for a "
                  "multi-camera take (its synchronised frames; size from the first camera's "
                  "video, NULL without it).",
                  allowed=("video", "session.yaml", "dlc_metadata", "predictions")),
               _c("params_name", _STR, "Processing parameter set chosen for the recording "
                  "(session.yaml `processing:`, else the tracking type's default)."),
               _c("params_hash", _STR, "Hash of that parameter set."),
               _c("arena_outline_source", _STR, "Where the arena outline in pixels comes "
                  "from (session.yaml, a registry rig, <subject>/calibration.yaml); NULL: "
                  "none (pixels_per_cm or the tracked extent calibrate)."),
               _c("arena_outline_px", _STR, "The outline as JSON (corners_px, bounds_px or "
                  "center_px + radius_px), image pixels."),
               _c("promoted_from", _STR, "The model the session.yaml or the registry default "
                  "names, when a promotion (registry `promotions:`, `dlc-platform models "
                  "promote`) replaced it by model_name; NULL otherwise."),
               _c("cameras", _STR, "A multi-camera take's cameras and their video files, "
                  "JSON object in session order, e.g. {\"top\": \"top.mp4\", ...}; its "
                  "video_path / video_file are the first (reference) camera's and n_frames / "
                  "duration_s the take's (docs/3d.md). NULL for a single-camera recording.",
                  optional=True))),
    TableSpec("prediction_sources", "Where each recording's predictions came from and what "
              "was tolerated on the way in (one row per recording; per recording x camera for a "
              "multi-camera recording).",
              (_RID, _MODEL,
               _c("source", _STR, "'inference' or 'manual' (files dropped in dlc_<stem>/).",
                  nullable=False),
               _c("scorer", _STR, "DLC scorer of the predictions.", nullable=False),
               _c("files", _STR, "The files read, as JSON."),
               _c("rows_in_files", _I64, "Prediction rows in the files.", "frames"),
               _c("video_frames", _I64, "Frames of the video.", "frames"),
               _c("rows_dropped", _I64, "Extra trailing rows dropped to match the video "
                  "(within frame_count_tolerance).", "frames"),
               _c("rows_padded", _I64, "Missing trailing rows added as missing points "
                  "(within frame_count_tolerance).", "frames"),
               _c("dlc_fps", _F64, "Frame rate in DLC's metadata, when there is one.", "Hz"),
               _c("points_outside_frame", _I64, "Points DLC placed outside the video frame "
                  "(kept in predictions, flagged)."),
               _c("notes", _STR, "What the readers tolerated (e.g. a CSV re-saved by "
                  "pandas), as JSON."),
               _CAMERA)),
    TableSpec("calibrations", "The pixel -> cm calibration each processed recording used "
              "(one row per recording x model x method x parameter set).",
              (_RID, _MODEL, _METHOD, _PARAMS_NAME, _PARAMS_HASH,
               _c("source", _STR, "arena_corners | arena_bounds | arena_circle (the arena's "
                  "outline in the image) | pixels_per_cm (session.yaml) | arena_width | "
                  "arena_height | arena_size (tracked extent scaled to the arena size: a "
                  "flagged fallback).", nullable=False),
               _c("from_tracked_extent", _BOOL, "The scale depends on where the animal went "
                  "(fallback; flagged by the calibration_anisotropy check)."),
               _c("outline_source", _STR, "File or rig the arena outline came from."),
               _c("pixels_per_cm", _F64, "Mean scale.", "px/cm"),
               _c("pixels_per_cm_x", _F64, "Scale along the arena's x.", "px/cm"),
               _c("pixels_per_cm_y", _F64, "Scale along the arena's y.", "px/cm"),
               _c("per_axis", _BOOL, "x and y scaled separately (arena outline); else the "
                  "mean scale for both."),
               _c("rotation_deg", _F64, "Rotation of the arena's x axis in the image "
                  "(arena frame, counter-clockwise).", "deg"),
               _c("origin_x_px", _F64, "Origin (arena's lower-left corner), arena-frame x.",
                  "px"),
               _c("origin_y_px", _F64, "Origin, arena-frame y (up).", "px"),
               _c("fit_residual_cm", _F64, "Largest corner misfit of a corners outline "
                  "(perspective or a mis-measured corner).", "cm"),
               _c("anisotropy", _F64, "|px/cm x / px/cm y - 1|."))),
    TableSpec("predictions", "Raw DLC predictions, one row per frame x body part (the seed's "
              "TrackingRaw.DLCPart; per frame x body part x camera for a multi-camera "
              "recording). Image coordinates: origin top-left, y down.",
              (_RID, _MODEL, _FRAME, _TIME, _PART,
               _c("x_px", _F64, "x in the image (right), as DLC wrote it (negative or beyond "
                  "the frame kept); NULL = missing (DLC's NaN, or x = y = likelihood = 0).",
                  "px"),
               _c("y_px", _F64, "y in the image (down), as DLC wrote it; NULL = missing.",
                  "px"),
               _c("likelihood", _F64, "DLC likelihood in [0, 1]; NULL = missing."),
               _c("outside_frame", _BOOL, "DLC placed the point outside the video frame "
                  "(more than half a pixel beyond its edges); kept as written. The "
                  "state-vector step excludes such points by the processing parameter "
                  "`outside_frame` (docs/processing.md). A multi-camera recording's "
                  "cameras: from the image size in the calibration, NULL where it has "
                  "none."),
               _CAMERA)),
    TableSpec("raw_state_vectors", "One subject state vector per frame (the seed's "
              "TrackingRaw.OpenField): position in image pixels (unflipped), head angle in "
              "the arena frame.",
              (_RID, _MODEL, _METHOD,
               _c("method_hash", _STR, "Hash of the method's parameters (provenance).",
                  nullable=False),
               _PARAMS_NAME, _PARAMS_HASH,
               _FRAME, _TIME,
               _c("x_px", _F64, "Position x in the image.", "px"),
               _c("y_px", _F64, "Position y in the image (down).", "px"),
               _c("head_angle_rad", _F64, "Head angle, arena frame, counter-clockwise from "
                  "+x, in [0, 2pi).", "rad"),
               _c("speed_px_s", _F64, "Speed of the position.", "px/s"),
               _c("valid", _BOOL, "All body parts the method needs were present."))),
    TableSpec("arena_boundaries", "Arena boundary in the image per recording x model x method "
              "(the seed's TrackingRaw.OpenField boundaries).",
              (_RID, _MODEL, _METHOD,
               _c("left_px", _F64, "Left boundary (image x).", "px"),
               _c("right_px", _F64, "Right boundary (image x).", "px"),
               _c("top_px", _F64, "Top boundary (image y).", "px"),
               _c("bottom_px", _F64, "Bottom boundary (image y).", "px"))),
    TableSpec("processed_tracking", "Processed tracking per frame (the seed's "
              "Tracking.OpenField): arena frame (x right, y up, origin at the boundary's "
              "lower-left corner), cm; jumps removed, short gaps interpolated, smoothed. A "
              "multi-camera recording's rows are its 3D state vector (docs/3d.md): x/y in "
              "the floor plane and z of the calibration's world frame, head azimuth as "
              "head_direction_deg, pitch, roll and 3D speed; triangulated, not smoothed.",
              (_RID, _MODEL, _METHOD,
               _PARAMS_NAME, _PARAMS_HASH,
               _FRAME, _TIME,
               _c("x_cm", _F64, "Position x, arena frame.", "cm"),
               _c("y_cm", _F64, "Position y, arena frame (up).", "cm"),
               _c("speed_cm_s", _F64, "Speed.", "cm/s"),
               _c("head_direction_deg", _F64, "Head direction, counter-clockwise from +x, "
                  "[0, 360).", "deg"),
               _c("angular_head_velocity_deg_s", _F64, "Angular head velocity "
                  "(counter-clockwise positive).", "deg/s"),
               _c("movement_direction_deg", _F64, "Direction of movement, counter-clockwise "
                  "from +x, [0, 360).", "deg"),
               _c("interpolated", _BOOL, "Position was interpolated over a gap."),
               *_TRACKING_3D)),
    TableSpec("recording_summaries", "One row per processed_tracking partition x model x "
              "method x parameter set: the figures of the recording_summary view, computed "
              "by summarize_tracking() from the frames when the partition is written.",
              (_RID, _MODEL, _METHOD,
               _PARAMS_NAME, _PARAMS_HASH,
               _c("tracking_file", _STR, "Name of the processed_tracking file (version) "
                  "these figures summarize; recording_summary shows the row only while that "
                  "file is the partition's current one.", nullable=False),
               _c("n_frames", _I64, "Frames (rows of processed_tracking).", "frames",
                  nullable=False),
               _c("duration_s", _F64, "Last minus first frame time.", "s"),
               _c("distance_cm", _F64, "Sum of the steps between consecutive frames where "
                  "both are tracked (gaps contribute nothing).", "cm"),
               _c("mean_speed_cm_s", _F64, "Mean of speed_cm_s over the frames that have "
                  "one.", "cm/s"),
               _c("tracked_fraction", _F64, "Share of frames with a position."),
               _c("interpolated_fraction", _F64, "Share of frames whose position was "
                  "interpolated."),
               _c("coverage_bin_cm", _F64, "Side of the square coverage bins.", "cm"),
               _c("arena_width_cm", _F64, "Arena width the coverage was computed with (the "
                  "recording's arena_width_cm at the time).", "cm"),
               _c("arena_height_cm", _F64, "Arena height the coverage was computed with.",
                  "cm"),
               _c("visited_bins", _I64, "Coverage bins holding at least one tracked frame "
                  "(positions outside the arena count in the nearest edge bin)."),
               _c("arena_bins", _I64, "Coverage bins of the arena: ceil(width / bin) x "
                  "ceil(height / bin); NULL when the arena size is unknown."),
               _c("coverage", _F64, "visited_bins / arena_bins; NULL when the arena size is "
                  "unknown."))),
    TableSpec("processed_body_parts", "Processed per-body-part positions (the seed's "
              "Tracking.DLCPart), arena frame, cm.",
              (_RID, _MODEL, _FRAME, _TIME, _PART,
               _c("x_cm", _F64, "x, arena frame.", "cm"),
               _c("y_cm", _F64, "y, arena frame (up).", "cm"))),
    TableSpec("occupancy", "Time spent per square spatial bin of the arena frame, per "
              "recording x model x method x parameter set: the denominator of rate maps "
              "(divide event counts per bin by occupancy_s). Every bin of the arena's grid "
              "has a row (0 s when unvisited); positions outside the arena count in the "
              "nearest edge bin. Written by the occupancy asset from processed_tracking.",
              (_RID, _MODEL, _METHOD, _PARAMS_NAME, _PARAMS_HASH,
               _c("bin_cm", _F64, "Side of the square bins (processing parameter "
                  "occupancy_bin_cm).", "cm", nullable=False),
               _c("x_bin", _I32, "Bin column from 0: x in [x_min_cm, x_min_cm + bin_cm).",
                  nullable=False),
               _c("y_bin", _I32, "Bin row from 0: y in [y_min_cm, y_min_cm + bin_cm).",
                  nullable=False),
               _c("x_min_cm", _F64, "Lower x edge of the bin, arena frame.", "cm"),
               _c("y_min_cm", _F64, "Lower y edge of the bin, arena frame (up).", "cm"),
               _c("occupancy_s", _F64, "Time spent in the bin: each tracked frame counts "
                  "until the next frame (the last one the median frame step).", "s"),
               _c("n_frames", _I64, "Tracked frames in the bin.", "frames"))),
    # Imaging sessions (dlc_tracking.imaging, docs/imaging.md).
    TableSpec("tracking_on_imaging", "Processed tracking resampled at every imaging frame "
              "(one row per imaging frame and plane) of a recording whose session names its "
              "imaging (session.yaml `imaging:`): linear interpolation between the two video "
              "frames around the imaging time for position, speed and angular velocity, "
              "along the shorter arc for head direction. Written by the tracking_on_imaging "
              "asset; the macro tracking_on_imaging(rec) reads one recording.",
              (_RID, _MODEL, _METHOD, _PARAMS_NAME, _PARAMS_HASH,
               _c("plane", _I32, "Imaging plane from 0 (a volume's planes each have their "
                  "own time; 0 for single-plane imaging).", nullable=False),
               _c("imaging_frame", _I64, "Frame index within the plane, from 0 (the volume "
                  "number for multi-plane imaging): the index of the frame in Suite2p's "
                  "traces of that plane.", nullable=False),
               _c("acquisition_frame", _I64, "Frame index in the acquisition from 0, all "
                  "planes interleaved (ScanImage frameNumbers - 1).", nullable=False),
               _c("imaging_time_s", _F64, "Frame time on the imaging clock, from the "
                  "acquisition start (ScanImage frameTimestamps_sec).", "s", nullable=False),
               _c("time_s", _F64, "The same instant on the recording clock (seconds from "
                  "the first video frame, like processed_tracking.time_s; from the sync TTLs "
                  "when the session has them).", "s", nullable=False),
               _c("x_cm", _F64, "Position x at the imaging time, arena frame.", "cm"),
               _c("y_cm", _F64, "Position y, arena frame (up).", "cm"),
               _c("speed_cm_s", _F64, "Speed.", "cm/s"),
               _c("head_direction_deg", _F64, "Head direction, counter-clockwise from +x, "
                  "[0, 360), interpolated along the shorter arc.", "deg"),
               _c("angular_head_velocity_deg_s", _F64, "Angular head velocity "
                  "(counter-clockwise positive).", "deg/s"),
               _c("nearest_frame", _I64, "The video frame nearest the imaging time "
                  "(processed_tracking.frame)."),
               _c("valid", _BOOL, "Tracking is known at this imaging frame: inside the video, "
                  "both neighbouring video frames tracked (position, and head direction when "
                  "the method has one; not a gap), the nearest within "
                  "max_sample_distance_frames video frames, and (without sync) start_time "
                  "and the imaging start within max_clock_offset_s. Values are NULL where "
                  "false.",
                  nullable=False),
               _c("z_cm", _F64, "Height at the imaging time (multi-camera takes: "
                  "processed_tracking.z_cm interpolated linearly); NULL for single-camera "
                  "recordings.", "cm", optional=True),
               _c("pitch_deg", _F64, "Head pitch, nose up positive (linear); NULL for "
                  "single-camera recordings.", "deg", optional=True),
               _c("roll_deg", _F64, "Head roll, left ear up positive, interpolated along the "
                  "shorter arc, [-180, 180); NULL for single-camera recordings.", "deg",
                  optional=True),
               _c("individual", _STR, "Track (DLC individual) of a multi-animal recording: "
                  "one set of rows per individual; NULL for a single-animal recording.",
                  optional=True),
               _c("subject", _STR, "The individual's subject (session.yaml individuals:); "
                  "NULL for an anonymous track and for a single-animal recording (its "
                  "subject is the recording's).", optional=True))),
    TableSpec("imaging_alignments", "How each recording's imaging frames were put on its "
              "clock (one row per recording with imaging): sources, start times, clock "
              "offset, sync and dropped frames, frame rates; the provenance of "
              "tracking_on_imaging.",
              (_RID,
               _c("imaging_source", _STR, "Where the frame times come from.",
                  allowed=("scanimage", "suite2p", "frame_times")),
               _c("files", _STR, "The imaging files read, as JSON."),
               _c("acquisition_start", _TS, "Acquisition start (ScanImage epoch with the "
                  "session's time zone); NULL when the source has none."),
               _c("recording_start", _TS, "The recording's start (recordings.start_time)."),
               _c("start_time_source", _STR, "Where the recording's start came from: "
                  "session.yaml start_time, or the imaging (ScanImage epoch).",
                  allowed=("session.yaml", "imaging")),
               _c("clock", _STR, "'sync': both frame series from DAQ TTLs; 'start_time': "
                  "start times + frame times, the two clocks assumed to agree.",
                  allowed=("sync", "start_time")),
               _c("clock_offset_s", _F64, "Imaging start minus recording start as used.",
                  "s"),
               _c("header_offset_s", _F64, "The same from the start times (ScanImage epoch "
                  "minus start_time); NULL when the imaging has no start.", "s"),
               _c("assumption", _STR, "What the alignment assumes, in words."),
               _c("n_planes", _I32, "Planes per volume."),
               _c("n_channels", _I32, "Saved channels (a frame's time is taken once)."),
               _c("n_imaging_frames", _I64, "Rows in tracking_on_imaging (all planes).",
                  "frames"),
               _c("frames_per_plane", _I64, "Frames of each plane.", "frames"),
               _c("header_frame_rate_hz", _F64, "Frame rate the acquisition declares "
                  "(ScanImage scanFrameRate, or Suite2p fs x planes).", "Hz"),
               _c("measured_frame_rate_hz", _F64, "1 / median step of the frame times.",
                  "Hz"),
               _c("imaging_duration_s", _F64, "Last minus first imaging frame time.", "s"),
               _c("video_duration_s", _F64, "Last minus first video frame time.", "s"),
               _c("camera_ttls", _I64, "Camera TTLs in the sync file; NULL without sync."),
               _c("dropped_camera_frames", _I64, "Camera TTLs without a video frame "
                  "(frames the camera dropped); NULL without sync.", "frames"),
               _c("dropped_frames_located", _BOOL, "The dropped frames were located from "
                  "the video's timestamps file (else the frames took the first TTLs)."),
               _c("imaging_ttls", _I64, "Imaging TTLs in the sync file; NULL without sync."),
               _c("fraction_valid", _F64, "Share of imaging frames with valid tracking."),
               _c("notes", _STR, "What the readers found (versions, files, channels), as "
                  "JSON."))),
    TableSpec("skipped_recordings", "Recordings (or steps of them) deliberately not processed, "
              "with the reason.",
              (_RID,
               _c("asset", _STR, "The asset (step) that skipped the recording.",
                  nullable=False),
               _c("reason", _STR, "Why, in words.", nullable=False))),
    # Model training and evaluation (dlc_tracking.training, docs/models.md).
    TableSpec("model_evaluations", "DeepLabCut's evaluate_network of a model, one row per "
              "snapshot x body part ('all' = every body part, DLC's own overall figures): "
              "mean Euclidean error in px between labels and predictions on the train and "
              "test images of the model's training dataset, all keypoints and those "
              "predicted above the p-cutoff. Partition key = model_name (written by the "
              "model_evaluations asset, `dlc-platform models evaluate`).",
              (_MODEL,
               _c("iteration", _I64, "DLC project iteration of the model.", nullable=False),
               _c("shuffle", _I64, "DLC shuffle of the model.", nullable=False),
               _c("training_fraction", _F64, "Share of the labeled images in the train "
                  "split."),
               _c("snapshot", _STR, "Snapshot file evaluated (e.g. snapshot-200.pt).",
                  nullable=False),
               _c("snapshot_epochs", _I64, "Epochs the snapshot was trained for.",
                  "epochs"),
               _c("registered_snapshot", _BOOL, "The snapshot the registry entry uses "
                  "(the one inference runs).", nullable=False),
               _c("body_part", _STR, "Canonical body-part name, or 'all'.", nullable=False),
               _c("train_rmse_px", _F64, "Mean error on the train images.", "px"),
               _c("test_rmse_px", _F64, "Mean error on the test images.", "px"),
               _c("train_rmse_pcutoff_px", _F64, "Mean error on the train images, keypoints "
                  "predicted with likelihood >= pcutoff only.", "px"),
               _c("test_rmse_pcutoff_px", _F64, "The same on the test images.", "px"),
               _c("pcutoff", _F64, "Likelihood cut-off used."),
               _c("n_train_keypoints", _I64, "Labeled keypoints in the train images."),
               _c("n_test_keypoints", _I64, "Labeled keypoints in the test images."),
               _c("evaluated_at", _TS, "When the evaluation ran (UTC).", nullable=False)),
              partition_column="model_name"),
    # Model review (dlc_tracking.model_review, docs/models.md).
    TableSpec("frame_quality", "Frames a recording's model may have got wrong: one row per "
              "FLAGGED frame of the recording's current predictions (frames without a row "
              "are unflagged). Flags: body parts below the likelihood cutoff (or missing), "
              "jumps between consecutive frames, and disagreement in px with another "
              "version's predictions of the same recording (model_predictions); in a "
              "multi-animal recording one row per flagged frame x individual, with its "
              "identity flags (identity swaps, two tracks on one animal). Written by "
              "the frame_quality asset; read by `dlc-platform models review`.",
              (_RID, _MODEL, _FRAME, _TIME,
               _c("n_body_parts", _I32, "Body parts the model tracks.", nullable=False),
               _c("low_likelihood_parts", _I32, "Body parts below likelihood_cutoff or "
                  "missing.", nullable=False),
               _c("min_likelihood", _F64, "Lowest likelihood of the frame (missing = 0)."),
               _c("jump_parts", _I32, "Body parts that moved more than jump_threshold_px "
                  "since the previous frame.", nullable=False),
               _c("max_jump_px", _F64, "Largest step of a body part since the previous "
                  "frame.", "px"),
               _c("outlier_parts", _I32, "Body parts that are confident-mistake suspects "
                  "whatever their likelihood: jumped away and back while the others stayed, "
                  "or far from where the other parts place them in this recording "
                  "(docs/models.md). NULL in rows written before the flag existed."),
               _c("outlier_body_parts", _STR, "Their names, comma-separated."),
               _c("max_outlier_px", _F64, "How far the worst of them is from its expected "
                  "place.", "px"),
               _c("compared_model", _STR, "The other version whose predictions of this "
                  "recording the frame was compared with; NULL: none."),
               _c("disagreement_parts", _I32, "Body parts more than "
                  "disagreement_threshold_px from compared_model's; NULL: no comparison."),
               _c("max_disagreement_px", _F64, "Largest distance between the two versions' "
                  "points of a body part.", "px"),
               _c("score", _F64, "How informative the frame is for relabelling: "
                  "(low_likelihood_parts + jump_parts + outlier_parts + disagreement_parts) / "
                  "n_body_parts "
                  "+ (1 - mean likelihood) / 2, + 1 for each identity flag (every body part "
                  "of a swapped track is on the wrong animal); larger = worse.",
                  nullable=False),
               _c("likelihood_cutoff", _F64, "Likelihood below which a body part is flagged "
                  "(the recording's method's cutoff)."),
               _c("jump_threshold_px", _F64, "Step that counts as a jump.", "px"),
               _c("disagreement_threshold_px", _F64, "Distance between versions that counts "
                  "as a disagreement.", "px"),
               # Multi-animal recordings (docs/multi-animal.md): one row per flagged frame
               # and individual; single-animal files are stored without these columns.
               _c("individual", _STR, "Track (DLC individual) the row describes, in a "
                  "multi-animal recording (one row per flagged frame x individual); NULL for "
                  "a single-animal recording.", optional=True),
               _c("identity_swap", _BOOL, "The individual's label was exchanged with "
                  "another's between frame-1 and frame (identity_events); NULL for a "
                  "single-animal recording.", optional=True),
               _c("two_tracks_one_animal", _BOOL, "The individual's track sits on the same "
                  "animal as another track; NULL for a single-animal recording.",
                  optional=True))),
    TableSpec("model_predictions", "Raw predictions of a model version that is not (or no "
              "longer) a recording's current one, so that both versions stay queryable: the "
              "new version's predictions on the sample `dlc-platform models compare` ran, "
              "the old version's predictions copied by `dlc-platform models promote` before "
              "the backfill replaces the recording's predictions, and other registered "
              "models' outputs found beside the assigned model's in the session's "
              "dlc_<video stem>/ folder. Partition key "
              "`<recording_id>__<model_name>`; same columns as predictions plus source.",
              (_RID, _MODEL, _FRAME, _TIME, _PART,
               _c("x_px", _F64, "x in the image (right), as DLC wrote it; NULL = missing.",
                  "px"),
               _c("y_px", _F64, "y in the image (down); NULL = missing.", "px"),
               _c("likelihood", _F64, "DLC likelihood in [0, 1]; NULL = missing."),
               _c("outside_frame", _BOOL, "DLC placed the point outside the video frame."),
               _c("source", _STR, "'compare' (inferred by models compare), 'promote' "
                  "(the replaced version's predictions, kept) or 'manual' (another model's "
                  "outputs in the dlc_<video stem>/ folder).", nullable=False,
                  allowed=("compare", "promote", "manual")),
               _CAMERA),
              partition_column=None),
    TableSpec("model_agreement", "How two versions of a model differ, per recording x body "
              "part ('all' = every body part pooled), from `dlc-platform models compare OLD "
              "NEW`. Partition key `<old_model>__vs__<new_model>` (the latest comparison of "
              "the pair).",
              (_c("old_model", _STR, "The version the recording was processed with.",
                  nullable=False),
               _c("new_model", _STR, "The candidate version.", nullable=False),
               _c("recording_id", _STR, "Recording id (a partition of the recordings).",
                  nullable=False),
               _PART,
               _c("n_frames", _I64, "Frames where both versions have the body part.",
                  "frames"),
               _c("median_distance_px", _F64, "Median distance between the two versions' "
                  "points.", "px"),
               _c("p95_distance_px", _F64, "95th percentile of that distance.", "px"),
               _c("threshold_px", _F64, "Distance that counts as a disagreement.", "px"),
               _c("fraction_above_threshold", _F64, "Share of those frames further apart "
                  "than threshold_px."),
               _c("likelihood_cutoff", _F64, "Cutoff of the low-likelihood fractions."),
               _c("old_low_likelihood_fraction", _F64, "Share of frames below the cutoff or "
                  "missing, old version."),
               _c("new_low_likelihood_fraction", _F64, "The same, new version."),
               _c("low_likelihood_change", _F64, "new - old low-likelihood fraction "
                  "(negative: the new version is more confident)."),
               _c("old_distance_travelled_px", _F64, "Sum of steps between consecutive "
                  "frames above the cutoff, old version.", "px"),
               _c("new_distance_travelled_px", _F64, "The same, new version.", "px"),
               _c("distance_travelled_change", _F64, "new / old - 1 (jitter and jumps make "
                  "it larger)."),
               _c("compared_at", _TS, "When the comparison ran (UTC).")),
              partition_column=None),
    TableSpec("camera_calibrations", "A rig's calibration of one day, one row per camera "
              "(the `camera_calibrations` asset, partition `<rig>__<YYYY-MM-DD>`, docs/3d.md "
              "section 2): made from the board videos in <data root>/calibrations/<rig>/"
              "<YYYY-MM-DD>/ or imported unchanged, stored as an Anipose calibration.toml.",
              (_c("calibration_id", _STR, "`<rig>__<YYYY-MM-DD>` (the Dagster partition "
                  "key).", nullable=False),
               _c("rig", _STR, "Rig (registry `rigs:` name).", nullable=False),
               _c("date", _STR, "Calibration day, ISO `YYYY-MM-DD` (the folder's name); "
                  "sessions on or after it use it until the next one.", nullable=False),
               _c("camera", _STR, "Camera name (one of the rig's).", nullable=False),
               _c("source", _STR, "Where it came from.", nullable=False,
                  allowed=("charuco_videos", "checkerboard_videos", "anipose_toml",
                           "dlc_3d")),
               _c("width_px", _I64, "Image width.", "px"),
               _c("height_px", _I64, "Image height.", "px"),
               _c("focal_length_px", _F64, "Focal length (mean of fx and fy).", "px"),
               _c("cx_px", _F64, "Principal point x.", "px"),
               _c("cy_px", _F64, "Principal point y.", "px"),
               _c("k1", _F64, "First radial distortion coefficient."),
               _c("reprojection_error_px", _F64, "Mean reprojection error of the board "
                  "corners seen by 2+ cameras (NULL: an import that does not record it); the "
                  "asset check fails above its threshold.", "px"),
               _c("axes", _STR, "World axes: 'calibration' (the first camera's frame), "
                  "'floor_board' (board on the floor, floor/ images) or 'points'."),
               _c("file", _STR, "The calibration.toml written (warehouse "
                  "calibrations/<rig>/<YYYY-MM-DD>/).", nullable=False),
               _c("sha256", _STR, "SHA-256 of that file (provenance).", nullable=False),
               _c("source_files", _STR, "The videos / files it was made from, comma "
                  "separated.")),
              partition_column="calibration_id"),
    TableSpec("pose_3d_calibrations", "The calibration a multi-camera recording was "
              "triangulated with, one row per recording x camera (docs/3d.md): where it came "
              "from and how well it explains the session's 2D points.",
              (_RID,
               _c("rig", _STR, "Rig (registry `rigs:` name, or 'multicam' for a session "
                  "without one).", nullable=False),
               _c("camera", _STR, "Camera name.", nullable=False),
               _c("calibration_file", _STR, "The calibration file used (session's "
                  "`calibration:`, else the rig's dated calibration, else the registry "
                  "rig's).", nullable=False),
               _c("calibration_sha256", _STR, "SHA-256 of that file (provenance)."),
               _c("reprojection_error_px", _F64, "Median reprojection error of this "
                  "camera's points used in triangulation, on this session.", "px"),
               _c("median_reprojection_error_px", _F64, "Median over all cameras (the "
                  "value the calibration check compares with its threshold).", "px"),
               _c("flagged", _BOOL, "The calibration does not explain the session (likely "
                  "another rig's or a moved camera); see the asset check."))),
    TableSpec("pose_3d", "Triangulated body parts of a multi-camera recording, one row per "
              "frame x body part (docs/3d.md). World frame of the calibration (x, y on the "
              "floor when aligned to the arena, z up), millimetres.",
              (_RID, _FRAME, _TIME, _PART,
               _c("x_mm", _F64, "x, world frame; NULL = seen by fewer than 2 cameras.", "mm"),
               _c("y_mm", _F64, "y, world frame.", "mm"),
               _c("z_mm", _F64, "z, world frame (up when aligned to the floor).", "mm"),
               _c("reprojection_error_px", _F64, "Mean reprojection error over the cameras "
                  "used.", "px"),
               _c("n_cameras", _I32, "Cameras used (0 where missing).", nullable=False),
               _c("score", _F64, "Mean 2D likelihood of the cameras used."))),
]}
"""Strict tables: columns are validated and cast on write."""

# The replaced version's processed numbers, kept by `dlc-platform models promote` like its
# predictions (model_predictions): same columns as the current tables, one partition per
# recording x version, so an analyst still has the old distance, speed, coverage...
for _name, _current, _what in (
        ("model_processed_tracking", "processed_tracking", "processed tracking frames"),
        ("model_recording_summaries", "recording_summaries", "recording_summaries row(s)")):
    TABLES[_name] = TableSpec(
        _name, f"The {_what} of a model version that is no longer a recording's current "
        f"one: copied from {_current} by `dlc-platform models promote` before the backfill "
        "replaces them, so both versions stay queryable (docs/models.md, 'Both versions in "
        "the warehouse'). Partition key `<recording_id>__<model_name>`; the same columns as "
        f"{_current}.", TABLES[_current].columns, partition_column=None)


# Multi-animal recordings (dlc_tracking.social, docs/multi-animal.md). The per-animal
# tables are the single-animal tables with ``individual`` and ``subject`` after their
# keys, kept as tables of their own so that single-animal files, writers and summaries
# stay exactly as they are; the views subject_tracking and subject_predictions put both
# together per subject.
_INDIVIDUAL = _c("individual", _STR, "Track (DLC individual) name as in the file, e.g. mus1.",
                 nullable=False)
_SUBJECT = _c("subject", _STR, "Subject id the track is mapped to (session.yaml "
              "`individuals:`); NULL = an anonymous track.")
_KEYS = ("recording_id", "model_name", "method_name", "method_hash", "params_name",
         "params_hash")


def _per_individual(source: str, name: str, description: str) -> TableSpec:
    """``source``'s columns with ``individual`` and ``subject`` after its keys."""
    cols = tuple(c for c in TABLES[source].columns if c.name not in MULTI_CAMERA_COLUMNS)
    n_keys = next(i for i, c in enumerate(cols) if c.name not in _KEYS)
    return replace(TABLES[source], name=name, description=description,
                   columns=(*cols[:n_keys], _INDIVIDUAL, _SUBJECT, *cols[n_keys:]))


_IND_A = _c("individual_a", _STR, "First individual of the pair (file order).", nullable=False)
_IND_B = _c("individual_b", _STR, "Second individual of the pair.", nullable=False)
_SUBJ_A = _c("subject_a", _STR, "Subject of individual_a; NULL = anonymous.")
_SUBJ_B = _c("subject_b", _STR, "Subject of individual_b; NULL = anonymous.")
_SOCIAL_PN = _c("params_name", _STR, "Social parameter set name.", nullable=False)
_SOCIAL_PH = _c("params_hash", _STR, "Hash of the social parameters.", nullable=False)

_MULTI_ANIMAL: list[TableSpec] = [
    _per_individual("predictions", "individual_predictions",
                    "Raw maDLC predictions, one row per frame x individual x body part."),
    replace(TABLES["predictions"], name="unique_body_parts",
            columns=tuple(c for c in TABLES["predictions"].columns
                          if c.name not in MULTI_CAMERA_COLUMNS),
            description="Unique body parts of a multi-animal model (parts of no animal: "
            "arena corners, an object), one row per frame x part; DLC's `single`."),
    _per_individual("raw_state_vectors", "individual_state_vectors",
                    "Raw state vector per frame and individual (image pixels)."),
    _per_individual("processed_tracking", "individual_tracking",
                    "Processed tracking per frame and individual; all individuals of a "
                    "recording share one calibration (arena frame, cm)."),
    _per_individual("processed_body_parts", "individual_body_parts",
                    "Processed body parts per frame and individual (arena frame, cm)."),
    TableSpec("identity_events", "Identity problems of a multi-animal recording, one row "
              "per event: identity_swap (labels of two tracks exchanged between frame-1 and "
              "frame), appears / vanishes / reappears, two_tracks_one_animal.",
              (_RID, _c("event", _STR, "Kind of event.", nullable=False,
                        allowed=("identity_swap", "appears", "vanishes", "reappears",
                                 "never_present", "two_tracks_one_animal")),
               _INDIVIDUAL, _SUBJECT,
               _c("other_individual", _STR, "The other track (swaps, duplicates)."),
               _c("frame", _I64, "First frame of the event.", nullable=False),
               _c("stop_frame", _I64, "Frame after the event (exclusive)."),
               _c("value_px", _F64, "Swap: cost of keeping the labels (px of motion); "
                  "duplicate: mean distance of matching body parts.", "px"),
               _c("other_value_px", _F64, "Swap: cost of exchanging the labels.", "px"))),
    TableSpec("social", "Social measures per frame and pair of individuals (arena frame).",
              (_RID, _IND_A, _IND_B, _SUBJ_A, _SUBJ_B,
               _c("frame", _I64, "Video frame.", nullable=False),
               _c("time_s", _F64, "Frame time.", "s"),
               _c("distance_cm", _F64, "Between the state-vector positions.", "cm"),
               _c("nose_nose_cm", _F64, "Nose to nose.", "cm"),
               _c("a_nose_b_tail_base_cm", _F64, "a's nose to b's tail base.", "cm"),
               _c("b_nose_a_tail_base_cm", _F64, "b's nose to a's tail base.", "cm"),
               _c("a_facing_b_deg", _F64, "Angle between a's head direction and the "
                  "direction a -> b (0 = looking at b).", "deg"),
               _c("b_facing_a_deg", _F64, "The same for b.", "deg"),
               _c("a_faces_b", _BOOL, "a_facing_b_deg < facing_deg."),
               _c("b_faces_a", _BOOL, "b_facing_a_deg < facing_deg."),
               _c("in_proximity", _BOOL, "distance_cm < proximity_cm."),
               _c("contact", _BOOL, "Nose-nose or nose-tail-base < contact_cm."),
               _SOCIAL_PN, _SOCIAL_PH)),
    TableSpec("social_summary", "Social measures per recording and pair.",
              (_RID, _IND_A, _IND_B, _SUBJ_A, _SUBJ_B,
               _c("n_frames", _I64, "Frames.", "frames"),
               _c("n_frames_known", _I64, "Frames where both positions are known.", "frames"),
               _c("mean_distance_cm", _F64, "Mean distance.", "cm"),
               _c("time_in_proximity_s", _F64, "Time closer than proximity_cm.", "s"),
               _c("fraction_in_proximity", _F64, "Share of known frames in proximity."),
               _c("n_contacts", _I64, "Contacts lasting at least min_event_s."),
               _c("contact_time_s", _F64, "Time in those contacts.", "s"),
               _c("n_approaches_a_to_b", _I64, "Approaches by a to b."),
               _c("n_approaches_b_to_a", _I64, "Approaches by b to a."),
               _SOCIAL_PN, _SOCIAL_PH)),
    TableSpec("multi_animal_sources", "The maDLC file a multi-animal recording was read "
              "from and its own names (one row per recording): what `dlc-platform export` "
              "writes back (docs/exports.md).",
              (_RID, _MODEL,
               _c("scorer", _STR, "DLC scorer of the file read (its top column level).",
                  nullable=False),
               _c("individuals", _STR, "The file's individuals in its order, as JSON.",
                  nullable=False),
               _c("dlc_body_parts", _STR, "The file's multi-animal body parts in its "
                  "order, as JSON.", nullable=False),
               _c("body_parts", _STR, "Their canonical names (same order; those of "
                  "individual_predictions), as JSON.", nullable=False),
               _c("unique_body_parts", _STR, "The file's unique body parts (DLC's "
                  "`single`), as JSON."),
               _c("tracker", _STR, "ellipse, box, skeleton or transformer (from the file "
                  "name); NULL when the name does not say."),
               _c("filtered", _BOOL, "A `_filtered` file (DLC's filterpredictions)."),
               _c("files", _STR, "The files read, as JSON."),
               _c("notes", _STR, "What the readers did or tolerated, as JSON."),
               _c("source", _STR, "manual (DeepLabCut's outputs in the session's "
                  "dlc_<video stem>/) or inference (the platform ran DeepLabCut's "
                  "multi-animal path on the gpu queue; files in its work area)."))),
]

for _spec in _MULTI_ANIMAL:
    TABLES[_spec.name] = _spec
MULTI_ANIMAL_TABLE_NAMES: tuple[str, ...] = tuple(t.name for t in _MULTI_ANIMAL)
"""Tables written for multi-animal recordings (process_multi_animal_recording)."""

REGISTRY_TABLES: dict[str, str] = {
    "models": "Registered DLC models (the seed's DLCModel): identity (task, date, iteration, "
              "shuffle, trainingsetindex, snapshotindex, engine), scorer, body parts.",
    "body_parts": "Canonical body-part vocabulary (the seed's TrackedBodyPart).",
    "tracking_types": "Kinds of recording and whether state vectors are supported.",
    "methods": "State-vector methods (the seed's DLCTrackingProcessingMethod): body parts "
               "needed, parameters, parameter hash.",
    "pairings": "Valid model x method pairings (the seed's DLCProcessingMethod).",
}
"""Unpartitioned tables whose columns the registry assets define (flexible schema)."""

_SUMMARY_COLUMNS = ("r.subject, r.session, s.recording_id, s.model_name, s.method_name, "
                    "s.params_name, s.n_frames, s.duration_s, s.distance_cm, "
                    "s.mean_speed_cm_s, s.tracked_fraction, s.interpolated_fraction, "
                    "s.coverage")

SUMMARY_VIEWS: dict[str, tuple[str, str]] = {
    "recording_summary": (
        "Per recording x model x method x parameter set: frames, duration_s, distance_cm "
        "(sum of steps between consecutive tracked frames), mean_speed_cm_s, "
        "tracked_fraction, interpolated_fraction, and coverage (share of the arena's "
        f"{COVERAGE_BIN_CM:g} cm x {COVERAGE_BIN_CM:g} cm bins visited); with subject and "
        "session. Reads the one-row-per-partition recording_summaries (milliseconds), "
        "keeping the rows that summarize the current processed_tracking file; a partition "
        "without one (written before summaries existed, or whose summary write failed) is "
        "left out until `python -m dlc_tracking.warehouse backfill-summaries` (or a "
        "re-materialization) writes it. Same numbers as recording_summary_from_frames.",
        f"""
SELECT {_SUMMARY_COLUMNS}
FROM recording_summaries s
JOIN processed_tracking_files f
    ON f.recording_id = s.recording_id AND f.tracking_file = s.tracking_file
LEFT JOIN recordings r ON r.recording_id = s.recording_id
WHERE s.n_frames > 0
"""),
    "recording_summary_from_frames": (
        "recording_summary recomputed from every frame of processed_tracking (a window "
        "function over all rows: seconds per 10 million frames). For checking the fast "
        "view, and for partitions that have no current summary yet. Coverage uses the "
        "arena size in recordings now (recording_summary: the one at processing time).",
        f"""
WITH steps AS (
    SELECT *,
        x_cm - lag(x_cm) OVER w AS dx_cm,
        y_cm - lag(y_cm) OVER w AS dy_cm
    FROM processed_tracking
    WINDOW w AS (PARTITION BY recording_id, model_name, method_name, params_name
                 ORDER BY frame)
), per AS (
    SELECT s.recording_id, s.model_name, s.method_name, s.params_name,
        count(*) AS n_frames,
        max(s.time_s) - min(s.time_s) AS duration_s,
        coalesce(sum(sqrt(s.dx_cm * s.dx_cm + s.dy_cm * s.dy_cm)), 0) AS distance_cm,
        avg(s.speed_cm_s) AS mean_speed_cm_s,
        avg(CASE WHEN s.x_cm IS NOT NULL AND s.y_cm IS NOT NULL THEN 1.0 ELSE 0.0 END)
            AS tracked_fraction,
        avg(CASE WHEN s.interpolated THEN 1.0 ELSE 0.0 END) AS interpolated_fraction,
        count(DISTINCT CASE WHEN s.x_cm IS NOT NULL AND s.y_cm IS NOT NULL
            AND r.arena_width_cm > 0 AND r.arena_height_cm > 0 THEN
            greatest(0, least(floor(s.x_cm / {COVERAGE_BIN_CM!r}),
                              ceil(r.arena_width_cm / {COVERAGE_BIN_CM!r}) - 1))::BIGINT
            * 1000000
            + greatest(0, least(floor(s.y_cm / {COVERAGE_BIN_CM!r}),
                                ceil(r.arena_height_cm / {COVERAGE_BIN_CM!r}) - 1))::BIGINT
            END) AS visited_bins,
        any_value(ceil(r.arena_width_cm / {COVERAGE_BIN_CM!r})
                  * ceil(r.arena_height_cm / {COVERAGE_BIN_CM!r})) AS arena_bins
    FROM steps s LEFT JOIN recordings r ON r.recording_id = s.recording_id
    GROUP BY s.recording_id, s.model_name, s.method_name, s.params_name
)
SELECT r.subject, r.session, p.recording_id, p.model_name, p.method_name, p.params_name,
    p.n_frames, p.duration_s, p.distance_cm, p.mean_speed_cm_s, p.tracked_fraction,
    p.interpolated_fraction,
    CAST(p.visited_bins AS DOUBLE) / nullif(p.arena_bins, 0) AS coverage
FROM per p LEFT JOIN recordings r ON r.recording_id = p.recording_id
"""),
    "prediction_quality": (
        "Per recording x model x body part, from predictions: frames, missing_fraction, "
        "mean_likelihood, low_likelihood_fraction (likelihood < 0.9 or missing).",
        """
SELECT recording_id, model_name, body_part,
    count(*) AS n_frames,
    avg(CASE WHEN x_px IS NULL OR y_px IS NULL THEN 1.0 ELSE 0.0 END) AS missing_fraction,
    avg(likelihood) AS mean_likelihood,
    avg(CASE WHEN likelihood IS NULL OR likelihood < 0.9 THEN 1.0 ELSE 0.0 END)
        AS low_likelihood_fraction
FROM predictions
GROUP BY recording_id, model_name, body_part
"""),
    "subject_tracking": (
        "Processed tracking per subject, whether it was filmed alone or with cage mates: "
        "processed_tracking (individual NULL, subject from recordings) and "
        "individual_tracking (its individual and subject) together. `WHERE subject = "
        "'M12'` is all of M12's frames; anonymous tracks have subject NULL.",
        """
SELECT p.recording_id, p.model_name, p.method_name, p.params_name, p.params_hash,
    CAST(NULL AS VARCHAR) AS individual, r.subject, p.frame, p.time_s, p.x_cm, p.y_cm,
    p.speed_cm_s, p.head_direction_deg, p.angular_head_velocity_deg_s,
    p.movement_direction_deg, p.interpolated
FROM processed_tracking p LEFT JOIN recordings r ON r.recording_id = p.recording_id
UNION ALL
SELECT recording_id, model_name, method_name, params_name, params_hash, individual,
    subject, frame, time_s, x_cm, y_cm, speed_cm_s, head_direction_deg,
    angular_head_velocity_deg_s, movement_direction_deg, interpolated
FROM individual_tracking
"""),
}
"""Views derived from the tables: name -> (description, SELECT)."""

MACROS: dict[str, tuple[str, str]] = {
    "tracking": (
        "`tracking(rec)`: processed tracking of one recording, ordered by frame.",
        "CREATE OR REPLACE MACRO tracking(rec) AS TABLE "
        "SELECT * FROM processed_tracking WHERE recording_id = rec ORDER BY model_name, "
        "method_name, params_name, frame"),
    "body_part_track": (
        "`body_part_track(rec, part)`: raw predictions of one body part of one recording, "
        "ordered by frame.",
        "CREATE OR REPLACE MACRO body_part_track(rec, part) AS TABLE "
        "SELECT * FROM predictions WHERE recording_id = rec AND body_part = part "
        "ORDER BY model_name, frame"),
    "tracking_on_imaging": (
        "`tracking_on_imaging(rec)`: tracking at every imaging frame of one recording "
        "(tracking_on_imaging rows), ordered by plane and imaging frame.",
        "CREATE OR REPLACE MACRO tracking_on_imaging(rec) AS TABLE "
        "SELECT * FROM tracking_on_imaging WHERE recording_id = rec ORDER BY model_name, "
        "method_name, params_name, plane, imaging_frame"),
}
"""Table macros: name -> (description, CREATE statement)."""

FILE_VIEWS: dict[str, str] = {"processed_tracking_files": "processed_tracking"}
"""Views listing the current file of each partition of a table: view -> table."""
FILE_VIEW_DESCRIPTION = ("The file each processed_tracking partition reads now "
                         "(recording_id, tracking_file); recording_summary keeps the summaries "
                         "of these files.")

_DEPENDS: dict[str, tuple[str, ...]] = {
    "recording_summary": ("recording_summaries", "processed_tracking_files", "recordings"),
    "recording_summary_from_frames": ("processed_tracking", "recordings"),
    "prediction_quality": ("predictions",),
    "subject_tracking": ("processed_tracking", "individual_tracking", "recordings"),
    "tracking": ("processed_tracking",),
    "body_part_track": ("predictions",),
    "tracking_on_imaging": ("tracking_on_imaging",),
}


def _with_dependencies(names: set[str]) -> set[str]:
    """Names plus the tables their summary views and macros read."""
    return set(names).union(*(_DEPENDS.get(n, ()) for n in names))



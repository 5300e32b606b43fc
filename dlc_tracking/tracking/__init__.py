"""From predictions to processed tracking: raw predictions, state-vector methods, the
raw state vector, calibration, cleaning, kinematics, processed tracking, summaries."""

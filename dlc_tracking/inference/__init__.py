"""Running DeepLabCut inference: device choice, staging, DLC's analyze_videos, manual runs."""

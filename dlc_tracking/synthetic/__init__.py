"""Test material made offline: synthetic open-field videos with ground truth and the
tiny real DLC models trained on them."""

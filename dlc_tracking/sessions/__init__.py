"""Sessions on disk: layout, session.yaml, recording ids, discovery, the sensor's scan,
and what is known about one recording before tracking."""

"""``python -m dlc_tracking.warehouse backfill-summaries [ROOT]``."""

from dlc_tracking.warehouse.maintenance import main

raise SystemExit(main())

"""The Celery app a dlc-platform worker serves (``celery -A dlc_assets.execution.celery_app``).

dagster-celery's step task bound to an app with the platform's broker, backend and
settings (see :mod:`dlc_assets.execution.celery_executor`), read from the environment.
"""

from dagster_celery.tasks import create_task

from dlc_assets.execution.celery_executor import worker_app

app = worker_app()
execute_plan = create_task(app)

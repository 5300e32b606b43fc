"""How steps run: the Celery app and executor (gpu / cpu queues), the worker identity
shown in step metadata, and the run launcher with health checks."""

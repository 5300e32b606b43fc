"""Which worker ran a step: host, process and queue, for the step's metadata.

``dlc-platform worker`` sets ``DLC_PLATFORM_WORKER_QUEUE`` and ``DLC_PLATFORM_WORKER_NAME``
before it starts Celery, so the steps a Celery worker runs can say where they ran; a step
of the in-process executor (the embedded default) runs in the run's own process and says
``in_process``.
"""

import os
import socket

ENV_QUEUE = "DLC_PLATFORM_WORKER_QUEUE"
ENV_NAME = "DLC_PLATFORM_WORKER_NAME"
IN_PROCESS = "in_process"


def worker_queue() -> str:
    """The queue this process serves (``in_process`` outside a Celery worker)."""
    return os.environ.get(ENV_QUEUE) or IN_PROCESS


def worker_description() -> str:
    """One line naming this worker, for error messages: name, host, pid, queue."""
    name = os.environ.get(ENV_NAME)
    head = f"worker {name} " if name else "worker "
    return f"{head}(host {socket.gethostname()}, pid {os.getpid()}, queue {worker_queue()})"


def worker_metadata() -> dict:
    """Step metadata naming the process that ran the step.

    Returns
    -------
    dict
        ``worker_host``, ``worker_pid`` and ``worker_queue`` (and ``worker_name``, the
        Celery node name, on a Celery worker).
    """
    meta = {"worker_host": socket.gethostname(), "worker_pid": os.getpid(),
            "worker_queue": worker_queue()}
    name = os.environ.get(ENV_NAME)
    if name:
        meta["worker_name"] = name
    return meta

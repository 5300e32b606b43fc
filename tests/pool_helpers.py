"""A job with one step in the ``gpu`` pool that runs until told to stop: a stand-in for a
long training or inference step, to kill and to wait behind (tests/test_pool_slots.py)."""

import time
from pathlib import Path

import dagster as dg


class HoldConfig(dg.Config):
    release_file: str  # the step ends when this file exists
    started_file: str  # written when the step holds its slot


@dg.op(pool="gpu")
def hold_gpu(config: HoldConfig) -> None:
    Path(config.started_file).write_text("holding")
    while not Path(config.release_file).exists():
        time.sleep(0.2)


@dg.job
def gpu_job() -> None:
    hold_gpu()


def run_holder(release_file: str, started_file: str, tags: dict | None = None) -> bool:
    """Run ``gpu_job`` in this process on the instance of $DAGSTER_HOME."""
    with dg.DagsterInstance.get() as instance:
        return gpu_job.execute_in_process(
            instance=instance, tags=tags or {}, raise_on_error=False,
            run_config={"ops": {"hold_gpu": {"config": {
                "release_file": release_file, "started_file": started_file}}}}).success


@dg.op
def noop() -> None:
    pass


def celery_job_for(broker: str, broker_wait_s: int) -> dg.JobDefinition:
    """A one-step job on the platform's Celery executor with this broker."""
    from dlc_assets.execution.celery_executor import CELERY_SETTINGS, platform_celery_executor

    @dg.job(name="celery_noop", executor_def=platform_celery_executor.configured({
        "broker": broker, "backend": broker, "config_source": dict(CELERY_SETTINGS),
        "broker_wait_s": broker_wait_s}))
    def celery_noop() -> None:
        noop()

    return celery_noop


def celery_job() -> dg.JobDefinition:
    """:func:`celery_job_for` from $TEST_BROKER (a reconstructable target)."""
    import os

    return celery_job_for(os.environ["TEST_BROKER"], int(os.environ["TEST_BROKER_WAIT_S"]))

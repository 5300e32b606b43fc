"""Steps on Celery workers (dagster-celery, Redis broker), chosen by configuration.

``DLC_PLATFORM_EXECUTOR=celery`` makes every job of the code location run its steps as
Celery tasks: ``dlc_predictions`` on the ``gpu`` queue (or the queue its model names in
the registry, passed by the sensor as the run tag ``dlc_platform/gpu_queue``), every
other step on the ``cpu`` queue. It is dagster-celery's own executor and execution loop,
with three additions a lab needs when workers live on other machines:

- the broker is checked before any step is sent: a run whose broker is down fails at
  once, naming the broker URL (password hidden), instead of waiting;
- a task whose worker died (``kill -9``, a machine rebooted) is noticed: a started task
  whose worker process is gone (a worker on this machine: checked by its pid at once) or
  no longer answers a ping for ``lost_after_s`` fails the run, naming the worker, so the
  instance's run retries start it again and its pool slot is free within seconds
  (dagster-celery alone waits for that task forever);
- a broker (or result backend) that goes down while the run waits for its steps ends
  the run after ``BROKER_OUTAGE_S`` with the same message as at launch (no traceback of
  the Redis client), and a run retry waits for the broker (``DLC_PLATFORM_CELERY_BROKER_
  WAIT_S``, saying so in the run's log every 30 s) instead of failing at once and
  spending the next retry;
- the run tag above routes a model's inference to the workers that hold its files;
  an untagged run (UI, backfill, reprocess) is routed from its partition key: a
  ``model_versions`` key (training, evaluation) to the ``queue:`` of that model or of the
  model a planned version derives from, a recording to its model's queue.

| variable                         | default                  | what                     |
|----------------------------------|--------------------------|--------------------------|
| DLC_PLATFORM_EXECUTOR            | in_process               | in_process or celery     |
| DLC_PLATFORM_CELERY_BROKER       | redis://127.0.0.1:6379/0 | Celery broker URL        |
| DLC_PLATFORM_CELERY_BACKEND      | the broker URL           | Celery result backend    |
| DLC_PLATFORM_CELERY_LOST_AFTER_S | 10                       | silence (s) before a     |
|                                  |                          | worker counts as lost    |
| DLC_PLATFORM_CELERY_BROKER_WAIT_S| 600                      | how long a run retry     |
|                                  |                          | waits for the broker     |
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
from dagster import Field, IntSource, multiple_process_executor_requirements
from dagster._core.execution.retries import RetryMode
from dagster_celery.core_execution_loop import core_celery_execution_loop
from dagster_celery.executor import CELERY_CONFIG, CeleryExecutor, _submit_task
from dagster_celery.make_app import make_app
from kombu.utils.url import maybe_sanitize_url

GPU_QUEUE = "gpu"
CPU_QUEUE = "cpu"
QUEUE_TAG = "dagster-celery/queue"
"""Op tag dagster-celery reads to choose a step's queue."""
GPU_QUEUE_TAG = "dlc_platform/gpu_queue"
PARTITION_TAG = "dagster/partition"
"""Run tag: the queue of this run's GPU steps (a model's own queue from the registry)."""
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
ENV_EXECUTOR = "DLC_PLATFORM_EXECUTOR"
ENV_BROKER = "DLC_PLATFORM_CELERY_BROKER"
ENV_BACKEND = "DLC_PLATFORM_CELERY_BACKEND"
ENV_LOST_AFTER = "DLC_PLATFORM_CELERY_LOST_AFTER_S"
ENV_BROKER_WAIT = "DLC_PLATFORM_CELERY_BROKER_WAIT_S"
DEFAULT_LOST_AFTER_S = 10
DEFAULT_BROKER_WAIT_S = 600
BROKER_OUTAGE_S = 15.0
"""A run waiting for its steps tolerates a broker or result backend this long down (a
restart) before it fails with the broker message."""
RETRY_TAGS = ("dagster/retry_number", "dagster/parent_run_id")
"""Run tags of a run retry (the daemon's run retries set them)."""

CELERY_SETTINGS = {
    # The default queue of steps without a queue tag: everything but inference.
    "task_default_queue": CPU_QUEUE,
    # A worker records STARTED (with its hostname and pid) in the result backend: how a
    # run knows which worker to watch.
    "task_track_started": True,
    # One task per worker process at a time: a long inference step must not hold a
    # second task hostage in its prefetch buffer.
    "worker_prefetch_multiplier": 1,
    # A broker that is down fails a submission after ~2 s, not after minutes.
    "broker_connection_timeout": 5,
    "broker_transport_options": {"max_retries": 2, "interval_start": 0, "interval_step": 0.5,
                                 "interval_max": 1},
    "result_backend_transport_options": {"retry_policy": {"timeout": 5.0}},
    # The run process gets results by polling; results are not kept longer than a day.
    "result_expires": 86400,
    "worker_hijack_root_logger": False,
}


class CeleryBrokerError(dg.DagsterError):
    """The Celery broker cannot be reached."""


class CeleryWorkerLostError(dg.DagsterError):
    """A worker died while it ran a step."""


def broker_url() -> str:
    """The broker URL from ``DLC_PLATFORM_CELERY_BROKER`` (default: Redis on loopback)."""
    return os.environ.get(ENV_BROKER) or DEFAULT_BROKER


def backend_url() -> str:
    """The result backend URL from ``DLC_PLATFORM_CELERY_BACKEND`` (default: the broker)."""
    return os.environ.get(ENV_BACKEND) or broker_url()


def safe_url(url: str) -> str:
    """A URL with its password hidden, for messages and logs."""
    return maybe_sanitize_url(url)


def broker_message(url: str, exc: BaseException, when: str = "") -> str:
    """The one message of a broker that cannot be reached (at launch or during a run)."""
    return (f"Celery broker {safe_url(url)} cannot be reached{when} ({type(exc).__name__}: "
            f"{exc}). Start it (Redis: `redis-server`, or `systemctl start redis-server`) or "
            f"point {ENV_BROKER} at the running broker; the workers must use the same URL.")


def connection_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the broker or result backend is unreachable."""
    from celery.exceptions import BackendError
    from kombu.exceptions import OperationalError

    errors: tuple[type[BaseException], ...] = (OSError, OperationalError, BackendError)
    try:
        import redis.exceptions as redis_errors

        errors += (redis_errors.ConnectionError, redis_errors.TimeoutError,
                   redis_errors.BusyLoadingError)
    except ImportError:  # another broker: kombu's and the OS's errors
        pass
    return errors


def check_broker(app, url: str, timeout_s: float = 5.0) -> None:
    """Connect to the broker once; raise :class:`CeleryBrokerError` naming it if down."""
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0.5,
                                   timeout=timeout_s)
    except Exception as exc:  # kombu raises OperationalError or the transport's own
        raise CeleryBrokerError(broker_message(url, exc)) from exc


def broker_waits(app, url: str, wait_s: float, every_s: float = 2.0,
                 tell_every_s: float = 30.0) -> Iterator[str]:
    """Wait for the broker up to ``wait_s``: yields a line to log when it starts waiting
    and every ``tell_every_s``; returns once the broker answers.

    Raises
    ------
    CeleryBrokerError
        Still down after ``wait_s`` (the message says how long it waited).
    """
    start = time.monotonic()
    told = None
    while True:
        try:
            check_broker(app, url)
        except CeleryBrokerError as exc:
            waited = time.monotonic() - start
            if told is not None and waited >= wait_s:
                raise CeleryBrokerError(f"{exc} Waited {waited:.0f} s for it "
                                        f"({ENV_BROKER_WAIT}).") from exc.__cause__
            if told is None or time.monotonic() - told >= tell_every_s:
                told = time.monotonic()
                yield (f"waiting for the Celery broker {safe_url(url)} (down for "
                       f"{waited:.0f} s so far, up to {wait_s:.0f} s, {ENV_BROKER_WAIT}) "
                       "before sending the steps of this run retry")
            time.sleep(every_s)
            continue
        if told is not None:
            yield (f"the Celery broker {safe_url(url)} is back after "
                   f"{time.monotonic() - start:.0f} s")
        return


def _worker_gone_here(node: str, pid) -> bool:
    """Whether a worker on this machine (node ``name@host``) has no process ``pid`` any
    more; False when it is on another machine or cannot be told."""
    import psutil

    host = node.rsplit("@", 1)[-1]
    if not pid or host not in {socket.gethostname(), socket.getfqdn()}:
        return False
    try:
        proc = psutil.Process(int(pid))
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except (psutil.AccessDenied, ValueError):
        return False


class WatchedResult:
    """A Celery AsyncResult that also notices when the worker running it has died.

    The execution loop only calls ``ready()``, ``get()`` and ``revoke()``. While the task
    is STARTED, every ``check_every_s`` the worker that took it (its node name, from the
    result backend) is pinged; after ``lost_after_s`` without an answer the task counts as
    lost: ``ready()`` says True and ``get()`` raises :class:`CeleryWorkerLostError`.
    """

    def __init__(self, result, app, step_key: str, queue: str, lost_after_s: float,
                 check_every_s: float = 2.0, broker: str = "",
                 outage_s: float = BROKER_OUTAGE_S) -> None:
        self._result = result
        self._app = app
        self.step_key = step_key
        self.queue = queue
        self.lost_after_s = lost_after_s
        self.check_every_s = check_every_s
        self.broker = broker
        self.outage_s = outage_s
        self._next_check = time.monotonic() + check_every_s
        self._silent_since: float | None = None
        self._down_since: float | None = None
        self.lost: str | None = None

    def ready(self) -> bool:
        """Whether the step is done (or lost). A broker or backend that cannot be
        reached is tolerated for ``outage_s``, then raises :class:`CeleryBrokerError`
        with the launch's message (the run fails cleanly; run retries wait for it)."""
        if self.lost is not None:
            return True
        now = time.monotonic()
        try:
            if self._result.ready():
                self._down_since = None
                return True
            if now >= self._next_check:
                self._next_check = now + self.check_every_s
                self._check_worker(now)
        except connection_errors() as exc:
            if self._down_since is None:
                self._down_since = now
            if now - self._down_since >= self.outage_s:
                raise CeleryBrokerError(broker_message(
                    self.broker or self._app.conf.broker_url or "?", exc,
                    f" while step {self.step_key} ran (down for "
                    f"{now - self._down_since:.0f} s)")) from None
            return False
        self._down_since = None
        return self.lost is not None

    def _check_worker(self, now: float) -> None:
        if self._result.state != "STARTED":
            return  # waiting in the queue for a worker is not a fault
        info = self._result.info if isinstance(self._result.info, dict) else {}
        node = info.get("hostname")
        if not node:
            return
        if _worker_gone_here(node, info.get("pid")):
            self.lost = (f"worker {node} (pid {info.get('pid')}, queue {self.queue}) took step "
                         f"{self.step_key} and its process is gone (killed or crashed). The "
                         "step's work is lost; the run is marked failed so that run retries "
                         "start it again.")
            return
        replies = self._app.control.ping(destination=[node], timeout=2.0)
        if replies:
            self._silent_since = None
            return
        if self._silent_since is None:
            self._silent_since = now
        elif now - self._silent_since >= self.lost_after_s:
            self.lost = (f"worker {node} (pid {info.get('pid')}, queue {self.queue}) took step "
                         f"{self.step_key} and has not answered for {self.lost_after_s:.0f} s: "
                         "it died or its machine is gone. The step's work is lost; the run "
                         "is marked failed so that run retries start it again.")

    def get(self):
        if self.lost is not None:
            raise CeleryWorkerLostError(self.lost)
        try:
            return self._result.get()
        except connection_errors() as exc:
            raise CeleryBrokerError(broker_message(
                self.broker or self._app.conf.broker_url or "?", exc,
                f" while the result of step {self.step_key} was read")) from None

    def revoke(self) -> None:
        self._result.revoke()


class PlatformCeleryExecutor(CeleryExecutor):
    """dagster-celery's executor with a broker check, lost-worker watch and model queues."""

    def __init__(self, retries, lost_after_s: float = DEFAULT_LOST_AFTER_S,
                 broker_wait_s: float = DEFAULT_BROKER_WAIT_S, **kwargs) -> None:
        super().__init__(retries, **kwargs)
        self.lost_after_s = lost_after_s
        self.broker_wait_s = broker_wait_s

    def execute(self, plan_context, execution_plan):
        from dagster._core.events import DagsterEvent, EngineEventData

        app = make_app(self.app_args())
        tags = plan_context.dagster_run.tags
        if any(tags.get(t) for t in RETRY_TAGS):
            # A retry (its first run failed, maybe because the broker went down): wait for
            # the broker instead of failing at once and spending the next retry.
            for line in broker_waits(app, self.broker, self.broker_wait_s):
                yield DagsterEvent.engine_event(plan_context, line, EngineEventData())
        else:
            check_broker(app, self.broker)
        # The sensor tags its runs; reprocess, backfills and UI launches are routed here.
        gpu_queue = (tags.get(GPU_QUEUE_TAG) or partition_gpu_queue(tags.get(PARTITION_TAG))
                     or GPU_QUEUE)

        def submit(app_, context, step, queue, priority, known_state):
            if queue == GPU_QUEUE:
                queue = gpu_queue
            try:
                result = _submit_task(app_, context, step, queue, priority, known_state)
            except Exception as exc:
                if isinstance(exc, CeleryBrokerError):
                    raise
                raise CeleryBrokerError(
                    f"could not send step {step.key} to queue {queue!r} on the Celery broker "
                    f"{safe_url(self.broker)}: {type(exc).__name__}: {exc}") from exc
            return WatchedResult(result, app_, step.key, queue, self.lost_after_s,
                                 broker=self.broker)

        yield from core_celery_execution_loop(plan_context, execution_plan,
                                              step_execution_fn=submit)


PLATFORM_CELERY_CONFIG = {
    **CELERY_CONFIG,
    "lost_after_s": Field(IntSource, is_required=False, default_value=DEFAULT_LOST_AFTER_S,
                          description="Seconds a started step's worker may stay silent "
                          "before the step counts as lost."),
    "broker_wait_s": Field(IntSource, is_required=False, default_value=DEFAULT_BROKER_WAIT_S,
                           description="Seconds a run retry waits for the broker."),
}


@dg.executor(name="dlc_celery", config_schema=PLATFORM_CELERY_CONFIG,
             requirements=multiple_process_executor_requirements())
def platform_celery_executor(init_context) -> PlatformCeleryExecutor:
    """The Celery executor of dlc-platform (see the module docstring)."""
    config = init_context.executor_config
    return PlatformCeleryExecutor(
        retries=RetryMode.from_config(config["retries"]), broker=config.get("broker"),
        backend=config.get("backend"), include=config.get("include"),
        config_source=config.get("config_source"), lost_after_s=config["lost_after_s"],
        broker_wait_s=config["broker_wait_s"])


def _source(env: str, default: str):
    # From the variable at run time when it is set (a URL with a password never lands in
    # the definitions), else the loopback default.
    return {"env": env} if os.environ.get(env) else default


def executor_config() -> dict:
    """The executor's configuration, from the environment (see the module docstring)."""
    return {
        "broker": _source(ENV_BROKER, DEFAULT_BROKER),
        "backend": _source(ENV_BACKEND, DEFAULT_BROKER) if os.environ.get(ENV_BACKEND)
        else _source(ENV_BROKER, DEFAULT_BROKER),
        "config_source": dict(CELERY_SETTINGS),
        "lost_after_s": int(float(os.environ.get(ENV_LOST_AFTER, DEFAULT_LOST_AFTER_S))),
        "broker_wait_s": int(float(os.environ.get(ENV_BROKER_WAIT, DEFAULT_BROKER_WAIT_S))),
    }


def worker_app():
    """The Celery app of a worker: same broker, backend and settings as the executor."""
    return make_app(PlatformCeleryExecutor(
        retries=RetryMode(RetryMode.DISABLED), broker=broker_url(), backend=backend_url(),
        config_source=dict(CELERY_SETTINGS)).app_args())


def chosen_executor() -> dg.ExecutorDefinition:
    """The executor named by ``DLC_PLATFORM_EXECUTOR`` (in_process, the default, or celery)."""
    name = (os.environ.get(ENV_EXECUTOR) or "in_process").strip().lower()
    if name in ("in_process", "in-process", "inprocess"):
        return dg.in_process_executor
    if name == "celery":
        return platform_celery_executor.configured(executor_config())
    raise ValueError(f"{ENV_EXECUTOR}={name!r}: use 'in_process' (the default) or 'celery'.")


_REGISTRY_CACHE: dict[str, tuple[int, object]] = {}


def _cached_registry(path: Path):
    from dlc_tracking.registry.registry_file import load_registry

    mtime = path.stat().st_mtime_ns
    cached = _REGISTRY_CACHE.get(str(path))
    if cached is None or cached[0] != mtime:
        cached = (mtime, load_registry(path))
        _REGISTRY_CACHE[str(path)] = cached
    return cached[1]


def model_queue_tags(recording, registry_path: str | os.PathLike[str]) -> dict[str, str]:
    """Run tags routing a recording's inference to its model's own queue, if it has one.

    The model is the recording's assignment in session.yaml, else its tracking type's
    default (as :func:`inspect_recording` resolves it). Returns ``{}`` when the model has
    no ``queue:`` in the registry (inference goes to ``gpu``) or when the session or
    registry cannot be read: the run's first step then fails with the clear message.
    """
    from dlc_tracking.errors import DLCPlatformError
    from dlc_tracking.sessions.layout import load_session_metadata

    try:
        registry = _cached_registry(Path(registry_path))
        if not any(m.queue for m in registry.models.values()):
            return {}
        meta = load_session_metadata(recording.session_yaml)
        model = meta.assignment.model if meta.assignment else None
        if model is None:
            model = (registry.defaults.get(meta.tracking_type) or (None, None))[0]
        if model is not None:  # a promoted version runs where its own queue says
            model = registry.promoted(model)
        queue = registry.models[model].queue if model in registry.models else None
    except (OSError, DLCPlatformError, ValueError):
        return {}
    return {GPU_QUEUE_TAG: queue} if queue else {}


def recording_gpu_queue(recording_id: str | None) -> str | None:
    """The queue of a recording's model for a run that has no queue tag.

    Runs the sensor starts carry :data:`GPU_QUEUE_TAG`; runs from ``dlc-platform
    reprocess``, backfills and the UI do not, so the executor looks the recording up here
    (the data root and registry of :mod:`dlc_assets.settings`). Only when some model of the
    registry names a queue: the look-up walks the data root.
    """
    from dlc_assets import settings
    from dlc_tracking.errors import DLCPlatformError
    from dlc_tracking.sessions.layout import find_recording

    if not recording_id:
        return None
    try:
        registry = _cached_registry(Path(settings.registry_path()))
        if not any(m.queue for m in registry.models.values()):
            return None
        recording = find_recording(Path(settings.data_root()), recording_id)
    except (OSError, DLCPlatformError, ValueError):
        return None  # the run's first step fails with the clear message
    return model_queue_tags(recording, settings.registry_path()).get(GPU_QUEUE_TAG)


def _version_queue(partition_key: str, registry_path: str | os.PathLike[str]
                   ) -> tuple[bool, str | None]:
    """``(is a model version, its queue)`` of a ``model_versions`` partition key.

    A registered model runs on its own ``queue:``; a planned version (its plan in
    ``<registry folder>/training/``) and a ``<model>-iter<N>-shuffle<S>`` added in the UI
    without a plan run on the queue of the model they derive from.
    """
    from dlc_tracking.errors import DLCPlatformError
    from dlc_tracking.training.versions import parse_version, plan_path, read_plan

    try:
        registry = _cached_registry(Path(registry_path))
        if partition_key in registry.models:
            return True, registry.models[partition_key].queue
        model = None
        if plan_path(registry_path, partition_key).is_file():
            model = read_plan(registry_path, partition_key).from_model
            found = True
        else:
            parsed = parse_version(partition_key)
            found = parsed is not None and parsed[0] in registry.models
            model = parsed[0] if found else None
    except (OSError, DLCPlatformError, ValueError):
        return False, None  # the run's first step fails with the clear message
    entry = registry.models.get(model) if model else None
    return found, entry.queue if entry is not None else None


def model_version_queue(partition_key: str | None,
                        registry_path: str | os.PathLike[str]) -> str | None:
    """The queue of a training or evaluation run (a ``model_versions`` partition) that has
    no queue tag (launched from the UI, a backfill).

    Parameters
    ----------
    partition_key : str or None
        A registered model, or a planned version (``<model>-iter<N>-shuffle<S>``).
    registry_path : path
        The registry file (plans live in its folder's ``training/``).

    Returns
    -------
    str or None
        The ``queue:`` of the model (of the model the version derives from, for a version
        not registered yet); None when it names none (the ``gpu`` queue) or the key is no
        model version.
    """
    if not partition_key:
        return None
    return _version_queue(partition_key, registry_path)[1]


def partition_gpu_queue(partition_key: str | None) -> str | None:
    """The queue of an untagged run's gpu steps from its partition key: a model version's
    model's queue (:func:`model_version_queue`, no walk of the data root), else the queue of
    the recording's model (:func:`recording_gpu_queue`)."""
    from dlc_assets import settings

    if not partition_key:
        return None
    is_version, queue = _version_queue(partition_key, settings.registry_path())
    if is_version:
        return queue
    return recording_gpu_queue(partition_key)

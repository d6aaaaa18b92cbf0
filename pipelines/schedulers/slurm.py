"""`slurm`: Dask workers started as SLURM batch jobs through dask-jobqueue; the same tasks as locally.

Options come from a YAML file (--cluster-config) and flags (--queue, --cores, …); flags win.
`jobs` is how many batch jobs to keep running; each job asks for `cores` CPUs and runs `processes`
worker processes sharing them (torch threads per worker = cores // processes), each with
`tasks_per_worker` Dask threads (tasks in flight), not one Dask thread per core: a task holds a
whole batch of clips in memory. The scheduler runs in
the eri-extract process and must be reachable from the compute nodes: set `interface`
(e.g. ib0) or `scheduler_options: {host: …}` when the default route is not the right one.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from pipelines.schedulers.dask_executor import DaskExecutor, quiet_dask
from pipelines.settings import SchedulerSettings

SLURM_DEFAULTS: dict[str, Any] = {
    "queue": None, "account": None, "cores": 8, "processes": 1, "memory": "32GB",
    "walltime": "04:00:00", "jobs": 4, "job_extra_directives": [], "job_script_prologue": [],
    "local_directory": None, "log_directory": None, "interface": None, "scheduler_options": {},
    "worker_extra_args": [], "job_name": "eri-extract", "python": None, "death_timeout": None,
}
PLACEHOLDER_ADDRESS = "tcp://SCHEDULER-ADDRESS:8786"  # shown in --print-job-script; set when the run starts


class ClusterConfigError(ValueError):
    """Bad SLURM options; the message names the file or flag."""


def load_options(config: Path | None, flags: dict[str, Any]) -> dict[str, Any]:
    """Defaults ← YAML file ← flags that were given (None = not given)."""
    import yaml

    from_file: dict[str, Any] = {}
    if config is not None:
        try:
            from_file = yaml.safe_load(config.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ClusterConfigError(f"{config}: cannot read cluster config: {exc}") from None
        if not isinstance(from_file, dict):
            raise ClusterConfigError(f"{config}: expected a mapping of SLURM options, got {type(from_file).__name__}")
        from_file = {str(k).replace("-", "_"): v for k, v in from_file.items()}
        unknown = set(from_file) - set(SLURM_DEFAULTS)
        if unknown:
            raise ClusterConfigError(f"{config}: unknown SLURM option(s) {sorted(unknown)}; "
                                     f"known: {sorted(SLURM_DEFAULTS)}")
    options = {**SLURM_DEFAULTS, **from_file, **{k: v for k, v in flags.items() if v is not None}}
    for key in ("cores", "processes", "jobs"):
        if not isinstance(options[key], int) or options[key] < (0 if key == "jobs" else 1):
            raise ClusterConfigError(f"SLURM option {key!r} must be a positive integer, got {options[key]!r}")
    return options


def threads_per_worker(options: dict[str, Any]) -> int:
    return max(1, int(options["cores"]) // int(options["processes"]))


def _job_kwargs(options: dict[str, Any], tasks_per_worker: int) -> dict[str, Any]:
    kwargs = {k: v for k, v in options.items() if k != "jobs" and v not in (None, [], {})}
    # dask-jobqueue's `cores` is Dask threads per job; the CPUs SLURM grants are `job_cpu`
    kwargs["job_cpu"] = int(options["cores"])
    kwargs["cores"] = int(options["processes"]) * max(1, tasks_per_worker)
    return kwargs


def slurm_job_script(options: dict[str, Any], tasks_per_worker: int = 1) -> str:
    """The sbatch script each job would run, without starting a scheduler (no network at all)."""
    from dask_jobqueue.slurm import SLURMJob

    kwargs = _job_kwargs(options, tasks_per_worker)
    kwargs.pop("scheduler_options", None)  # a scheduler setting, not a job one
    return SLURMJob(scheduler=PLACEHOLDER_ADDRESS, name="dummy-name", **kwargs).job_script()


@contextmanager
def slurm_cluster(options: dict[str, Any], tasks_per_worker: int = 1) -> Iterator[object]:
    """A SLURMCluster (scheduler in this process) scaled to `jobs` batch jobs; cancelled on exit."""
    from dask_jobqueue import SLURMCluster

    cluster = SLURMCluster(**_job_kwargs(options, tasks_per_worker))
    try:
        cluster.scale(jobs=int(options["jobs"]))
        yield cluster
    finally:
        cluster.close()


def planned_workers(settings: SchedulerSettings) -> int | None:
    return None  # jobs start when the queue lets them


@contextmanager
def open_executor(settings: SchedulerSettings, worker_env: dict[str, str]) -> Iterator[DaskExecutor]:
    from distributed import Client

    quiet_dask(settings.verbose)
    options = dict(settings.slurm)
    if worker_env:  # exported in the job script before the workers start
        prologue = [f"export {k}={v}" for k, v in worker_env.items()]
        options["job_script_prologue"] = [*options.get("job_script_prologue", []), *prologue]
    with slurm_cluster(options, settings.tasks_per_worker) as cluster, Client(cluster) as client:
        note = f"submitted {options['jobs']} SLURM job(s); tasks start as their workers connect"
        yield DaskExecutor(client, "slurm", int(options["jobs"]) * int(options["processes"]), note=note)

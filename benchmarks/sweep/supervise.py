"""Submit a sweep as one SLURM array and supervise it to the end (the ``slurm`` launcher presets).

What the stock submitit launcher does not do, and this one does:

- checks the request against the partition before submitting (:mod:`.resources`): a request no node can meet
  fails at once, naming the key;
- writes its own log (``<sweep dir>/launcher.log``) and a record of the array (``<sweep dir>/sweep.json``: the
  results folder, each task's overrides, job id and log paths), which ``python -m benchmarks.sweep`` reads;
- follows every task through ``squeue``/``sacct`` instead of waiting on result files only, so a task that dies
  without its result (``scancel``, out-of-memory kill, node failure) is seen as failed, with or without accounting;
- when some tasks fail, lets the others finish, writes the tables of what finished, lists the failed tasks with
  their log paths and exits non-zero: the same command then resumes only what is missing;
- cancels the array when the launcher itself is stopped (Ctrl-C, ``kill``, a closed terminal).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import slurm
from .resources import RequestError, check_request

log = logging.getLogger("benchmarks.sweep")

#: seconds between two looks at the queue (``BENCHMARKS_SWEEP_POLL_S`` overrides it)
POLL_S = float(os.environ.get("BENCHMARKS_SWEEP_POLL_S", "10"))
#: seconds a task may sit in an ended state (or be unknown to squeue and sacct) without its result file before it
#: counts as failed: the file may lag the state on a shared file system, and a requeue passes through such states
GRACE_S = float(os.environ.get("BENCHMARKS_SWEEP_GRACE_S", "60"))
LOG_NAME, RECORD_NAME, FAILED_NAME = "launcher.log", "sweep.json", "failed.txt"


@dataclass
class Task:
    """One array task: a (dataset, model, method, shard) job of the sweep."""

    index: int
    overrides: list[str]
    job: Any  # submitit.Job
    state: str = "SUBMITTED"
    reason: str = ""
    ended_since: float | None = None
    outcome: str = ""  # "" running | "ok" | "failed"
    why: str = ""
    value: Any = None

    @property
    def job_id(self) -> str:
        return str(self.job.job_id)

    @property
    def label(self) -> str:
        from hydra.core.utils import filter_overrides

        return " ".join(filter_overrides(self.overrides))

    def logs(self) -> str:
        return f"{self.job.paths.stdout}, {self.job.paths.stderr}"


def out_dir_of(config) -> Path:
    """The sweep's results folder (``out_dir``, relative to where the command started)."""
    from omegaconf import OmegaConf

    out = Path(str(OmegaConf.select(config, "out_dir") or "results/adhoc")).expanduser()
    if not out.is_absolute():
        out = Path(OmegaConf.select(config, "hydra.runtime.cwd") or os.getcwd()) / out
    return out


@contextlib.contextmanager
def log_to(path: Path):
    """Copy the launcher's log records (``benchmarks.*``, Hydra's, submitit's) into ``path`` for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


@contextlib.contextmanager
def cancel_on_signal(array_ids: list[str]):
    """While the block runs, SIGINT/SIGTERM/SIGHUP cancel the array (``scancel``) and end the launcher."""
    def stop(signum, frame):
        name = signal.Signals(signum).name
        log.warning("launcher stopped by %s: cancelling the array (scancel %s); finished rows stay in the store, "
                    "re-run the same command to resume", name, " ".join(array_ids))
        slurm.cancel(array_ids)
        raise SystemExit(128 + signum)

    sigs = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    old = {s: signal.getsignal(s) for s in sigs}
    for s in sigs:
        if signal.getsignal(s) is not signal.SIG_IGN:  # nohup's ignored SIGHUP stays ignored
            signal.signal(s, stop)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _executor(params: dict[str, Any], executor_name: str = "slurm"):
    """submitit's executor with the launcher's parameters, as hydra-submitit-launcher builds it."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf

    init_keys = {"max_num_timeout"}
    init = {"folder": params["submitit_folder"],
            **{f"{executor_name}_{k}": v for k, v in params.items() if k in init_keys}}
    executor = submitit.AutoExecutor(cluster=executor_name, **init)
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"{executor_name}_{k}": v for k, v in params.items()
                                  if k not in init_keys | {"submitit_folder"}})
    return executor


def write_record(sweep_dir: Path, out_dir: Path, tasks: list[Task], submitted_at: str) -> Path:
    """``sweep.json``: what ``python -m benchmarks.sweep`` shows without the launcher."""
    from ..io.store import atomic_write_text

    record = {"out_dir": str(out_dir), "submitted_at": submitted_at,
              "launcher_log": str(sweep_dir / LOG_NAME),
              "tasks": [{"index": t.index, "overrides": t.label, "job_id": t.job_id, "stdout": str(t.job.paths.stdout),
                         "stderr": str(t.job.paths.stderr), "outcome": t.outcome, "state": t.state, "why": t.why}
                        for t in tasks]}
    return atomic_write_text(sweep_dir / RECORD_NAME, json.dumps(record, indent=1))


def _read_result(task: Task) -> None:
    from submitit.core.utils import pickle_load

    try:
        outcome, value = pickle_load(task.job.paths.result_pickle)
    except Exception as e:  # noqa: BLE001 - a torn or unreadable result is a failed task
        task.outcome, task.why = "failed", f"unreadable result file ({type(e).__name__}: {e})"
        return
    if outcome != "success":
        last = [ln for ln in str(value).strip().splitlines() if ln.strip()][-1:] or ["(no traceback)"]
        task.outcome, task.why = "failed", f"raised: {last[0].strip()}"
        return
    status = getattr(value, "status", None)
    if status is not None and getattr(status, "name", "") == "FAILED":
        err = getattr(value, "_return_value", None)
        task.outcome, task.why = "failed", f"raised: {type(err).__name__}: {err}"
        return
    task.outcome, task.value = "ok", value


def watch(tasks: list[Task], poll_s: float = POLL_S, grace_s: float = GRACE_S) -> None:
    """Follow every task until it ended: ``ok`` (its result file says so) or ``failed`` (an error in its result
    file, or an ended state / no trace in the queue for ``grace_s`` without a result file)."""
    last = None
    while True:
        running = [t for t in tasks if not t.outcome]
        if not running:
            break
        try:
            states = slurm.task_states(t.job_id for t in running)
        except slurm.SlurmError as e:
            log.warning("could not read the queue (%s); trying again", e)
            states = None
        now = time.monotonic()
        for t in running:
            if t.job.paths.result_pickle.exists():
                _read_result(t)
                continue
            if states is None:
                continue
            t.state, t.reason = states.get(t.job_id, ("UNKNOWN", ""))
            if t.state in slurm.TERMINAL or t.state == "UNKNOWN":
                t.ended_since = now if t.ended_since is None else t.ended_since
                if now - t.ended_since >= grace_s:
                    t.outcome = "failed"
                    t.why = (f"{t.state} without a result file" if t.state != "UNKNOWN" else
                             "left the queue without a result file (neither squeue nor sacct knows it)")
            else:
                t.ended_since = None
        summary = _summary(tasks)
        if summary != last:
            log.info("%s", summary)
            last = summary
        if any(not t.outcome for t in tasks):
            time.sleep(poll_s)


def _summary(tasks: list[Task]) -> str:
    from collections import Counter

    done = Counter(t.outcome for t in tasks if t.outcome)
    states = Counter(t.state for t in tasks if not t.outcome)
    pending = sorted({t.reason for t in tasks if not t.outcome and t.state == "PENDING" and t.reason
                      not in ("", "None", "Priority", "Resources", "BeginTime")})
    text = (f"sweep: {done['ok']}/{len(tasks)} done, {done['failed']} failed"
            + "".join(f", {n} {s.lower()}" for s, n in sorted(states.items())))
    return text + (f" (pending because: {', '.join(pending)})" if pending else "")


def failure_report(tasks: list[Task], out_dir: Path, tables: bool) -> str:
    failed = [t for t in tasks if t.outcome == "failed"]
    lines = [f"sweep: {len(failed)} of {len(tasks)} tasks failed; "
             + (f"the tables of what finished are in {out_dir} (missing images and methods are marked there)"
                if tables else f"the finished rows are in {out_dir}/store")]
    for t in failed:
        lines.append(f"  #{t.index} {t.label}: job {t.job_id} {t.why}; logs: {t.logs()}")
    lines.append("Re-run the same command to run only what is missing (every finished row is kept in the store).")
    return "\n".join(lines)


def launch(launcher, job_overrides, initial_job_idx: int):
    """The ``launch`` of :class:`SupervisedSlurmLauncher`: check, submit one array, supervise, report."""
    from hydra.core.singleton import Singleton
    from omegaconf import OmegaConf

    config = launcher.config
    sweep_dir = Path(str(config.hydra.sweep.dir))
    out_dir = out_dir_of(config)
    with log_to(sweep_dir / LOG_NAME):
        params = dict(launcher.params)
        try:
            partition = check_request(params)
        except (RequestError, slurm.SlurmError) as e:
            log.error("%s", e)
            raise SystemExit(f"{e}\nNothing was submitted.") from None
        ok, why = slurm.accounting()
        if not ok:
            log.warning("SLURM accounting does not answer (%s): a task killed without its result file is noticed "
                        "only while squeue lists it (MinJobAge); a cluster with slurmdbd reports every task", why)
        executor = _executor(params)
        if "mode" in config.hydra.sweep:
            sweep_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(sweep_dir, int(str(config.hydra.sweep.mode), 8))
        job_params = [(list(o), "hydra.sweep.dir", initial_job_idx + k, f"job_id_for_{initial_job_idx + k}",
                       Singleton.get_state()) for k, o in enumerate(job_overrides)]
        jobs = executor.map_array(launcher, *zip(*job_params))
        tasks = [Task(p[2], p[0], j) for p, j in zip(job_params, jobs)]
        arrays = sorted({t.job_id.split("_")[0] for t in tasks})
        submitted = time.strftime("%Y-%m-%d %H:%M:%S")
        write_record(sweep_dir, out_dir, tasks, submitted)
        for t in tasks:
            log.info("#%d %s: job %s", t.index, t.label, t.job_id)
        log.info("submitted %d tasks to partition %s (array %s). Progress without the launcher: python -m "
                 "benchmarks.sweep %s; cancel: scancel %s; this log: %s", len(tasks), partition, ",".join(arrays),
                 sweep_dir, " ".join(arrays), sweep_dir / LOG_NAME)
        try:
            with cancel_on_signal(arrays):
                watch(tasks)
        finally:
            write_record(sweep_dir, out_dir, tasks, submitted)
        failed = [t for t in tasks if t.outcome == "failed"]
        if not failed:
            (sweep_dir / FAILED_NAME).unlink(missing_ok=True)  # an earlier run's, in the same sweep folder
            return [t.value for t in tasks]
        tables = bool(OmegaConf.select(config, "write_tables", default=True)) and (out_dir / "store").is_dir()
        if tables:
            from ..run.app import finalize

            try:
                for line in finalize(out_dir):
                    log.info("wrote %s", line)
            except Exception as e:  # noqa: BLE001 - the failure report below matters more
                log.exception("could not write the tables of the finished tasks: %s", e)
                tables = False
        if tables:  # a method whose every shard failed has no row to mark: name what is missing under the tables
            missing = "".join(f"- missing: task #{t.index} ({t.label}): {t.why}\n" for t in failed)
            with open(out_dir / "table.md", "a", encoding="utf-8") as fh:
                fh.write(f"\n**Incomplete sweep**: {len(failed)} of {len(tasks)} tasks failed; re-run the sweep to "
                         f"complete these tables.\n\n{missing}")
        report = failure_report(tasks, out_dir, tables)
        (sweep_dir / FAILED_NAME).write_text(report + "\n", encoding="utf-8")
        log.error("%s", report)
        raise SystemExit(report)

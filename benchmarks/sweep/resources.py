"""Check a sweep's resource request against the partition before anything is submitted.

``sbatch`` refuses some impossible requests (GPUs on a partition without any) but accepts others that then stay
PENDING forever (more CPUs or memory than any node has: reason ``PartitionConfig``). :func:`check_request` reads
the partition (``sinfo``, ``scontrol show partition``) and raises :class:`RequestError` naming the launcher key
and the largest value a node offers, so such a sweep fails at once instead of pending.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import slurm


class RequestError(ValueError):
    """A launcher request that no node of the partition can meet (one line: the key and the fix)."""


def _key(name: str) -> str:
    return f"hydra.launcher.{name}"


def check_request(params: dict[str, Any], query: Callable[[str], list[dict]] = slurm.partition_nodes,
                  info: Callable[[str], dict[str, str]] = slurm.partition_info,
                  default: Callable[[], str | None] = slurm.default_partition,
                  names: Callable[[], list[str]] = slurm.partitions) -> str:
    """Raise :class:`RequestError` unless some node of the requested partition meets the per-node request
    (``cpus_per_task`` x ``tasks_per_node``, ``mem_gb``, ``gpus_per_node``), the partition has ``nodes`` nodes and
    its time limit allows ``timeout_min``. Returns the partition checked. The SLURM queries are arguments so the
    rules are tested without a cluster."""
    partition = params.get("partition") or default()
    if not partition:
        raise RequestError(f"{_key('partition')} is not set and the cluster has no default partition: set "
                           f"{_key('partition')}=<name> (sinfo lists them)")
    nodes = query(partition)
    if not nodes:
        choices = ", ".join(names()) or "none"
        raise RequestError(f"{_key('partition')}={partition}: no such partition or it has no nodes; choose one of: "
                           f"{choices}")
    part = info(partition)
    if part.get("State", "UP") not in ("UP", ""):
        raise RequestError(f"{_key('partition')}={partition}: the partition is {part['State']}; choose another one")
    want_nodes = int(params.get("nodes") or 1)
    if want_nodes > len(nodes):
        raise RequestError(f"{_key('nodes')}={want_nodes}: partition {partition} has {len(nodes)} node(s); set "
                           f"{_key('nodes')}={len(nodes)} or less")
    limit = slurm.minutes(part.get("MaxTime", "UNLIMITED"))
    timeout = params.get("timeout_min")
    if limit is not None and timeout is not None and float(timeout) > limit:
        raise RequestError(f"{_key('timeout_min')}={timeout}: partition {partition} allows {limit:g} min per job "
                           f"(MaxTime); set {_key('timeout_min')}={int(limit)} or less (a job stopped by its time "
                           f"limit is requeued and resumes from the store)")
    cpus = int(params.get("cpus_per_task") or 1) * int(params.get("tasks_per_node") or 1)
    mem_mb = float(params.get("mem_gb") or 0) * 1024
    gpus = int(params.get("gpus_per_node") or 0)
    checks = [  # (key, value asked, what a node offers)
        ("gpus_per_node", gpus, lambda n: n["gpus"]),
        ("cpus_per_task", cpus, lambda n: n["cpus"]),
        ("mem_gb", mem_mb, lambda n: n["mem_mb"]),
    ]
    fits = list(nodes)
    for key, asked, offer in checks:
        ok = [n for n in fits if offer(n) >= asked]
        if not ok:
            best = max(offer(n) for n in fits)
            value = params.get(key)
            if key == "mem_gb":
                fix = f"set {_key(key)}={int(best // 1024)} or less"
                have = f"{int(best)} MB ({best / 1024:.1f} GB)"
            elif key == "cpus_per_task":
                per = int(params.get("tasks_per_node") or 1)
                fix = f"set {_key(key)}={max(1, best // per)} or less"
                have = f"{best} CPUs" + (f" for {per} tasks per node" if per > 1 else "")
            else:
                fix = f"set {_key(key)}=0 for a CPU partition (hydra/launcher=slurm_cpu)" if best == 0 else \
                    f"set {_key(key)}={best} or less"
                have = f"{best} GPUs"
            raise RequestError(f"{_key(key)}={value}: no node of partition {partition} can meet it (the largest "
                               f"offers {have}; the job would pend forever); {fix} or choose another partition "
                               f"({_key('partition')})")
        fits = ok
    return partition

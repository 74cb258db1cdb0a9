"""The SLURM commands the sweep tools call (``sinfo``, ``scontrol``, ``squeue``, ``sacct``, ``scancel``), each as a
small function returning plain data. Nothing here submits work: submitit does (``sbatch``)."""
from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable

#: states after which a task runs no more (unless submitit requeues it, which puts it back to PENDING)
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL",
            "DEADLINE", "SPECIAL_EXIT", "REVOKED")
_TIMEOUT_S = 30


class SlurmError(RuntimeError):
    """A SLURM command failed or is not installed."""


def available() -> bool:
    """Whether the SLURM client commands are on ``PATH``."""
    return all(shutil.which(c) for c in ("sbatch", "squeue", "sinfo", "scancel"))


def _call(*args: str, check: bool = True) -> str:
    if shutil.which(args[0]) is None:
        raise SlurmError(f"{args[0]} is not installed here (no SLURM client on PATH)")
    try:
        p = subprocess.run(list(args), capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as e:
        raise SlurmError(f"{' '.join(args)} did not answer within {_TIMEOUT_S}s") from e
    if check and p.returncode != 0:
        raise SlurmError(f"{' '.join(args)}: {(p.stderr or p.stdout).strip() or f'exit {p.returncode}'}")
    return p.stdout


def accounting() -> tuple[bool, str]:
    """(whether ``sacct`` answers, why not). Without accounting a task that dies without its result (scancel,
    out-of-memory kill, node failure) is seen only while ``squeue`` still lists it."""
    if shutil.which("sacct") is None:
        return False, "sacct is not installed"
    p = subprocess.run(["sacct", "-n", "-X", "-S", "now-1minutes", "-o", "JobID"], capture_output=True, text=True,
                       timeout=_TIMEOUT_S, check=False)
    if p.returncode != 0 or "disabled" in (p.stderr + p.stdout).lower():
        return False, (p.stderr or p.stdout).strip() or f"sacct exit {p.returncode}"
    return True, ""


def default_partition() -> str | None:
    """The partition marked default (``*``) by ``sinfo``, or None."""
    for name in _call("sinfo", "-h", "-o", "%P").split():
        if name.endswith("*"):
            return name[:-1]
    return None


def partitions() -> list[str]:
    return [p.rstrip("*") for p in dict.fromkeys(_call("sinfo", "-h", "-o", "%P").split())]


def partition_info(partition: str) -> dict[str, str]:
    """``scontrol show partition <p>`` as {key: value} (MaxTime, MaxNodes, State, ...); {} where it has none."""
    out = _call("scontrol", "show", "partition", partition, "-o", check=False)
    return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)


def partition_nodes(partition: str) -> list[dict]:
    """The nodes of ``partition``: name, CPUs, memory (MB), GPUs (from GRES) and state."""
    nodes = []
    for line in _call("sinfo", "-h", "-N", "-p", partition, "-o", "%N|%c|%m|%G|%T").splitlines():
        parts = line.strip().split("|")
        if len(parts) != 5:
            continue
        name, cpus, mem, gres, state = parts
        nodes.append({"name": name, "cpus": _int(cpus), "mem_mb": _int(mem), "gpus": gpus_in_gres(gres),
                      "state": state})
    return nodes


def gpus_in_gres(gres: str) -> int:
    """GPUs in a GRES string such as ``gpu:a100:4(S:0-1),shard:8`` (``(null)`` -> 0)."""
    total = 0
    for item in gres.split(","):
        fields = re.sub(r"\(.*?\)", "", item).split(":")
        if fields[0] == "gpu" and len(fields) >= 2:
            total += _int(fields[-1]) if fields[-1].isdigit() else 1
    return total


def _int(text: str) -> int:
    m = re.match(r"\d+", text.strip().rstrip("+"))
    return int(m.group()) if m else 0


def minutes(text: str) -> float | None:
    """A SLURM time (``UNLIMITED``, ``30``, ``1:00:00``, ``2-12:00:00``) in minutes; None for unlimited."""
    text = text.strip()
    if not text or text.upper() in ("UNLIMITED", "INFINITE", "NONE"):
        return None
    days, _, rest = text.rpartition("-")
    parts = [float(p) for p in rest.split(":")]
    if len(parts) == 1:
        mins = parts[0]
    elif len(parts) == 2:
        mins = parts[0] + parts[1] / 60
    else:
        mins = parts[0] * 60 + parts[1] + parts[2] / 60
    return mins + (float(days) * 1440 if days else 0.0)


def _expand(job_id: str) -> list[str]:
    """``12_[0-3,5%4]`` -> ``12_0 .. 12_3, 12_5`` (a pending array not yet split into tasks); others unchanged."""
    m = re.fullmatch(r"(\d+)_\[([^\]]+)\]", job_id)
    if not m:
        return [job_id]
    out = []
    for part in m.group(2).split("%")[0].split(","):
        lo, _, hi = part.partition("-")
        out += [f"{m.group(1)}_{k}" for k in range(int(lo), int(hi or lo) + 1)]
    return out


def task_states(job_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """{task id: (state, reason)} of the given array tasks (``12_0``) or jobs: ``squeue`` for the ones the
    controller still holds, ``sacct`` (where accounting answers) for the others. A task neither knows is absent."""
    ids = sorted(set(job_ids))
    if not ids:
        return {}
    arrays = sorted({i.split("_")[0] for i in ids})
    found: dict[str, tuple[str, str]] = {}
    out = _call("squeue", "-h", "-r", "--states=all", "-o", "%i|%T|%r", "-j", ",".join(arrays), check=False)
    for line in out.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            for t in _expand(parts[0]):
                found[t] = (parts[1].split()[0], parts[2])
    missing = [i for i in ids if i not in found]
    if missing and shutil.which("sacct"):
        out = _call("sacct", "-n", "-X", "-P", "-o", "JobID,State,Reason", "-j", ",".join(arrays), check=False)
        for line in out.splitlines():
            parts = line.strip().split("|")
            if len(parts) == 3:
                for t in _expand(parts[0]):
                    found.setdefault(t, (parts[1].split()[0], parts[2]))
    return {i: found[i] for i in ids if i in found}


def cancel(job_ids: Iterable[str]) -> None:
    """``scancel`` the jobs (array ids cancel every task of the array)."""
    ids = sorted(set(job_ids))
    if ids:
        _call("scancel", *ids, check=False)

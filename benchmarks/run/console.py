"""A quiet, honest console for the runner: what it prints besides its own lines, and how errors end a run.

- :func:`quiet_libraries`: diffusers' / transformers' notices at error level, hub progress bars off where the
  output is not a terminal (log files, SLURM logs).
- :func:`hub_offline_if_unreachable`: ``HF_HUB_OFFLINE`` honoured, and where it is not set, one short probe per
  process of the Hugging Face hub; without network the hub libraries are put offline, so each lookup fails (or
  takes the local cache) at once instead of retrying for tens of seconds per job.
- :func:`user_error`: a configuration mistake ends the run with its one-line message and the fix, without a
  Python traceback (``--debug`` or ``HYDRA_FULL_ERROR=1`` shows it).
- :class:`Progress`: a tqdm bar on a terminal; elsewhere one log line per minute instead of carriage returns.
"""
from __future__ import annotations

import functools
import logging
import os
import socket
import sys
import time

log = logging.getLogger("benchmarks.run")

#: where the hub lives (``HF_ENDPOINT`` overrides it, as in huggingface_hub)
HUB_HOST = "huggingface.co"
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def is_tty(stream=None) -> bool:
    stream = stream if stream is not None else sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def quiet_libraries() -> None:
    """Notices of the model libraries at error level (their warnings about deprecations and downloads drown the
    run's own lines); progress bars of hub downloads only on a terminal."""
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if not is_tty():
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    for name in ("diffusers", "transformers"):
        if name in sys.modules:  # already imported: their verbosity was read; set it through their API
            try:
                sys.modules[name].utils.logging.set_verbosity_error()
            except AttributeError:
                pass


def _truthy(value: str | None) -> bool:
    return str(value or "").strip().lower() in ("1", "true", "yes", "on")


@functools.cache
def hub_reachable(timeout: float = 3.0) -> bool:
    """One TCP connection to the hub (cached for the process)."""
    endpoint = os.environ.get("HF_ENDPOINT", f"https://{HUB_HOST}")
    host = endpoint.split("://", 1)[-1].split("/", 1)[0]
    name, _, port = host.partition(":")
    try:
        with socket.create_connection((name, int(port or 443)), timeout=timeout):
            return True
    except OSError:
        return False


def hub_offline_if_unreachable() -> bool:
    """True when the hub libraries are (now) offline: ``HF_HUB_OFFLINE`` was set, or the hub did not answer the
    probe (then the offline variables are set for this process and its children)."""
    if _truthy(os.environ.get("HF_HUB_OFFLINE")):
        offline = True
    elif "HF_HUB_OFFLINE" in os.environ:  # set to 0 by the user: leave the hub online
        return False
    else:
        offline = not hub_reachable()
        if offline:
            log.info("no network to %s: hub lookups are offline for this run (local caches only; set "
                     "HF_HUB_OFFLINE=0 to try the network anyway)", HUB_HOST)
    if offline:
        for var in _OFFLINE_VARS:
            os.environ.setdefault(var, "1")
        constants = sys.modules.get("huggingface_hub.constants")
        if constants is not None:  # imported already: it read the variable at import
            constants.HF_HUB_OFFLINE = True
    return offline


def debug_requested() -> bool:
    return _truthy(os.environ.get("HYDRA_FULL_ERROR")) or _truthy(os.environ.get("BENCHMARKS_DEBUG"))


def strip_debug_flag(argv: list[str]) -> list[str]:
    """``--debug`` is the runner's, not Hydra's: remove it and show full tracebacks."""
    if "--debug" in argv:
        argv = [a for a in argv if a != "--debug"]
        os.environ["HYDRA_FULL_ERROR"] = "1"
    return argv


def user_error(err: BaseException, prog: str = "benchmarks.run") -> SystemExit:
    """The exit for a mistake the user can fix: the message (which names the key and the fix), no traceback."""
    print(f"{prog}: error: {err}", file=sys.stderr)
    print("(run with --debug or HYDRA_FULL_ERROR=1 for the traceback)", file=sys.stderr)
    return SystemExit(2)


def interrupted(saved: int, before: int, out_dir) -> None:
    """What Ctrl-C leaves: the rows already saved, and that the same command resumes."""
    print(f"\ninterrupted: {saved} row(s) of this run saved in {out_dir}/store ({before} were there before); run "
          f"the same command again to resume (saved rows are not recomputed)", file=sys.stderr)


class Progress:
    """Images done of a job: a tqdm bar on a terminal, else one log line a minute and one at the end."""

    def __init__(self, total: int, desc: str, enabled: bool = True, every: float = 60.0, stream=None):
        self.total, self.desc, self.done, self.every = total, desc, 0, every
        self.t0 = self._last = time.monotonic()
        self.bar = None
        self.lines = enabled and not is_tty(stream)
        if enabled and not self.lines:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="img", desc=desc, dynamic_ncols=True, smoothing=0.1, file=stream)

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.lines and time.monotonic() - self._last >= self.every:
            self._line()

    def _line(self) -> None:
        self._last = time.monotonic()
        rate = self.done / max(self._last - self.t0, 1e-9)
        log.info("%s: %d/%d images (%.2f img/s)", self.desc, self.done, self.total, rate)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.lines and self.total and self.done:
            self._line()

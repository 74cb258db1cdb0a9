"""The ``attribution-bench`` console command (``[project.scripts]``; also ``python -m attribution``).

::

    attribution-bench list [methods|metrics|datasets|models|vaes|experiments|all]   # what a config can name
    attribution-bench run dataset=mnist method=ig ...     # = python -m benchmarks.run ...   (from a clone)
    attribution-bench table results/my_run ...            # = python -m benchmarks.table ...
    attribution-bench demo --methods ig,sig               # = python -m benchmarks.demo ...
    attribution-bench report results/my_run               # = python -m benchmarks.report ...

``list`` needs the library alone (the config choices are read from the clone's ``configs/`` where there is one);
the other commands run the harness of the clone the library was installed from (``pip install -e .``).
"""
from __future__ import annotations

import sys
from pathlib import Path

KINDS = ("methods", "metrics", "datasets", "models", "vaes", "experiments")
TOOLS = {"run": "benchmarks.run", "table": "benchmarks.table", "demo": "benchmarks.demo",
         "report": "benchmarks.report"}
ROOT = Path(__file__).resolve().parents[1]
#: options the runner sets itself (from the classifier), left out of the listings
_RUNNER_SET = ("mean", "std", "registered_name")


def _configs(group: str) -> list[str]:
    folder = ROOT / "configs" / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def _fmt_options(options: dict) -> str:
    import inspect

    parts = []
    for k, v in options.items():
        if k in _RUNNER_SET:
            continue
        parts.append(k if v is inspect.Parameter.empty else f"{k}={v!r}")
    return ", ".join(parts)


def listing(kind: str) -> list[str]:
    """The lines ``attribution-bench list <kind>`` prints."""
    import attribution

    if kind == "methods":
        out = []
        for name in attribution.available_methods():
            info = attribution.method_info(name)
            needs = [w for w, flag in (("VAE", info.needs_vae), ("reference bank", info.needs_bank)) if flag]
            extra = f" (needs a {', '.join(needs)})" if needs else ""
            out.append(f"{name:<18} {info.display}{extra}: {_fmt_options(attribution.method_options(name))}")
        return out
    if kind == "metrics":
        from attribution.metrics import METRICS
        from attribution.metrics.quantus_adapter import QUANTUS_METRICS, QuantusMetric
        from attribution.registry import option_defaults

        out = []
        for name in attribution.available_metrics():
            opts = _fmt_options(METRICS.options(name))
            if name.startswith("quantus"):  # the adapter's options, then the Quantus class's own keywords
                cls = QUANTUS_METRICS[name][0] if name in QUANTUS_METRICS else "<metric_name>"
                adapter = {**option_defaults(QuantusMetric), **(QUANTUS_METRICS.get(name, ("", "", {}))[2])}
                opts = f"Quantus {cls}: {_fmt_options(adapter)}, + any keyword of the Quantus class"
            out.append(f"{name:<34} {opts}")
        return out
    if kind == "datasets":
        from attribution.datasets import available_datasets

        configured = _configs("dataset")
        return [f"{name:<16} {'config: dataset=' + name if name in configured else 'registered'}"
                for name in sorted(set(available_datasets()) | set(configured))]
    if kind == "models":
        models = _configs("model")
        out = [f"{name:<20} config: model={name}" for name in models]
        if "timm" in models:
            out.append("(any timm model by name: model=timm model.arch=<timm name>)")
        return out
    if kind == "vaes":
        return [f"{name:<12} config: vae={name}" for name in _configs("vae")]
    if kind == "experiments":
        return [f"{name:<12} config: experiment={name}" for name in _configs("experiment")]
    raise ValueError(f"unknown kind {kind!r}: one of {list(KINDS)} or all")


def _list(args: list[str]) -> int:
    kinds = args or ["all"]
    bad = [k for k in kinds if k not in (*KINDS, "all")]
    if bad:
        print(f"attribution-bench list: unknown {bad[0]!r}; choose from {', '.join(KINDS)} or all", file=sys.stderr)
        return 2
    chosen = list(KINDS) if "all" in kinds else kinds
    for k in chosen:
        if len(chosen) > 1:
            print(f"## {k}")
        for line in listing(k):
            print(line)
        if len(chosen) > 1:
            print()
    return 0


def _tool(name: str, args: list[str]) -> int:
    import importlib

    if not (ROOT / "benchmarks").is_dir():
        print(f"attribution-bench {name}: the harness runs from a clone of the repository (it is not installed): "
              f"clone it, then `pip install -e \".[harness]\"` there", file=sys.stderr)
        return 2
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    module = TOOLS[name]
    if name == "run":  # a Hydra app: it reads sys.argv
        sys.argv = [module, *args]
        importlib.import_module("benchmarks.run.app").main()
        return 0
    mod = importlib.import_module("benchmarks.report.page" if name == "report" else module)
    return int(mod.main(args) or 0)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__.split("::", 1)[1].split("``list``", 1)[0].strip("\n"))
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "list":
        from .errors import ConfigError

        try:
            return _list(rest)
        except ConfigError as e:  # a plugin that fails to load: its one line, no traceback
            print(f"attribution-bench list: {e}", file=sys.stderr)
            return 2
    if cmd in TOOLS:
        return _tool(cmd, rest)
    print(f"attribution-bench: unknown command {cmd!r}; choose from list, {', '.join(TOOLS)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

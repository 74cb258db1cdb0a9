"""Weights & Biases logging for benchmark runs that can never lose results.

``WandbLogger(cfg, mode="offline", project=..., group=..., dir=...)`` opens one W&B run (one per sweep job;
``group`` groups the jobs of a sweep). Calls:

- ``log_rows(rows)`` per batch (a DataFrame or a list of store-row dicts): buffered for the per-image table, and the
  batch means of the scalar metrics are logged as history (``batch/<metric>``, ``progress/images``);
- ``flush_rows(df=None)``: the per-image table (``per_image``; curve columns left out, lists as JSON text);
- ``log_summary(dict)``, ``log_images(name, paths or arrays)``, ``log_curves(df or {line: values})`` (W&B line
  plots, one line per method, plus the area under each as a summary number), ``log_metrics(dict)``;
- ``log_leaderboard(df)``: the job's rows of ``table.csv`` (mean, 95% interval, n per metric column) as the W&B table
  ``leaderboard`` and a W&B bar chart of the means; the runs of a sweep's group then compare in W&B's own panels;
- ``log_report(out_dir)``: a whole experiment as the report shows it, in W&B's own tables and panels: the
  leaderboard, the paired comparison, the metric agreement (Kendall tau, summary ranking) and the per-image rows as
  tables, a bar chart per (dataset, model, metric), and the report's Plotly figures (leaderboard with intervals,
  forest plot, agreement heatmap) as ``wandb.Plotly`` (see :func:`report_to_wandb`, ``python -m benchmarks.report
  <out_dir> --wandb offline``);
- ``finish(df=None)``: with the run's final rows, logs the table, the leaderboard, the summary (means over ok
  rows, n ok / flagged) and the curves, then closes the run; ``abort()`` closes it after an error.

Every call is guarded: if W&B is missing, ``wandb.init`` fails, or a log call raises, the logger warns once per
operation, records what was not logged in ``.failures`` and in ``<dir>/wandb_not_logged.jsonl`` (summaries kept
there in full), and returns. The results store is written by the runner independently, so a W&B failure costs at
most the W&B copy.

``mode``: ``"offline"`` (files under ``<dir>/wandb/offline-run-*``, nothing leaves the machine; upload later with
``wandb sync``), ``"online"``, or ``"disabled"`` (W&B is not imported, calls are no-ops).

What a run wrote is read back from the files W&B itself writes into the run folder for its logged media
(:func:`read_table`: ``files/media/table/<name>_<step>_<hash>.table.json``, :func:`read_plotly`:
``files/media/plotly/...``, :func:`logged`): W&B's offline mode keeps config, summary and history only in its binary
transaction log (``run-<id>.wandb``, read by ``wandb sync``), which this module does not parse.
"""
from __future__ import annotations

import json
import re
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

MODES = ("offline", "online", "disabled")
#: W&B's own spellings of a mode (``WANDB_MODE``) -> ours
_MODE_ALIASES = {"dryrun": "offline", "run": "online", "shared": "online"}
DEFAULT_PROJECT = "attribution-bench"


def mode_from_env(default: str = "online") -> str:
    """The mode W&B's own environment asks for: ``WANDB_MODE`` (``dryrun``/``run`` as W&B reads them), or
    ``WANDB_DISABLED=true``; else ``default``."""
    import os

    if str(os.environ.get("WANDB_DISABLED", "")).lower() in ("true", "1", "yes"):
        return "disabled"
    env = str(os.environ.get("WANDB_MODE", "")).strip().lower()
    return _MODE_ALIASES.get(env, env) if env else default


def sync_hint(run_dir) -> str:
    """Where an offline run went and how to upload it."""
    return f"W&B offline run saved in {run_dir}; upload it with: wandb sync {run_dir}"
#: rows of the per-image table kept in one W&B table (W&B's documented limit is 200,000)
MAX_TABLE_ROWS = 200_000


def _jsonable(v):
    """numpy / pandas scalars and arrays -> plain Python; NaN stays float('nan')."""
    if isinstance(v, (np.generic,)):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


class WandbLogger:
    """One W&B run per benchmark job; every method is failure-safe (see the module docstring).

    Parameters
    ----------
    cfg: the resolved config as a plain dict (``OmegaConf.to_container(cfg, resolve=True)``).
    mode: ``"offline"`` | ``"online"`` | ``"disabled"``; None: as W&B's ``WANDB_MODE`` says (else online).
    project, group, name, job_type, tags: passed to ``wandb.init`` (``group`` groups the jobs of one sweep);
    ``WANDB_PROJECT`` / ``WANDB_RUN_GROUP`` / ``WANDB_TAGS`` / ``WANDB_ENTITY`` apply as W&B applies them.
    dir: where W&B writes (``<dir>/wandb/...``) and where ``wandb_not_logged.jsonl`` goes; ``out_dir``: the same,
    except that W&B's ``WANDB_DIR`` (if set) takes W&B's files; default: cwd.
    """

    def __init__(self, cfg: Mapping | None = None, mode: str | None = "offline", project: str | None = None,
                 group: str | None = None, dir: str | Path | None = None, name: str | None = None,
                 job_type: str | None = None, tags: Sequence[str] | None = None, entity: str | None = None,
                 config: Mapping | None = None, out_dir: str | Path | None = None, **init_kwargs):
        import os

        # W&B's own environment variables count where the caller left a value open (None), as in wandb.init
        mode = mode_from_env() if mode is None else mode
        if mode not in MODES:
            raise ValueError(f"unknown W&B mode {mode!r}: one of {MODES}")
        project = project or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT
        group = os.environ.get("WANDB_RUN_GROUP") or group
        if not tags and os.environ.get("WANDB_TAGS"):
            tags = [t.strip() for t in os.environ["WANDB_TAGS"].split(",") if t.strip()]
        cfg = cfg if cfg is not None else config  # ``config=`` accepted as an alias
        wandb_dir = dir if dir is not None else (os.environ.get("WANDB_DIR") or out_dir)
        dir = dir if dir is not None else out_dir
        self.mode = mode
        self.saved_to: Path | None = None  # an offline run's folder, once finished
        self.dir = Path(dir) if dir is not None else Path.cwd()
        self.failures: list[dict[str, Any]] = []
        self.run = None
        self._wandb = None
        self._step = 0
        self._warned = set()
        self._rows: list[dict[str, Any]] = []
        self._rows_logged = False
        if mode == "disabled":
            return
        try:
            import wandb

            self._wandb = wandb
            wandb_dir = Path(wandb_dir) if wandb_dir is not None else self.dir
            wandb_dir.mkdir(parents=True, exist_ok=True)
            settings = init_kwargs.pop("settings", None)
            if settings is None:
                settings = wandb.Settings(silent=True, console="off", x_disable_stats=True)
            self.run = wandb.init(
                project=project, entity=entity, group=group, name=name, job_type=job_type,
                tags=list(tags) if tags else None, config=_jsonable(dict(cfg or {})), mode=mode, dir=str(wandb_dir),
                reinit="create_new", settings=settings, **init_kwargs)
        except Exception as e:  # noqa: BLE001 - W&B must never stop a run
            self.run = None
            self._fail("init", e, {"config": _jsonable(dict(cfg or {})), "group": group, "project": project})

    # ------------------------------------------------------------------ bookkeeping
    @property
    def active(self) -> bool:
        return self.run is not None

    @property
    def run_dir(self) -> Path | None:
        """The run's folder (``.../offline-run-*``), or None."""
        try:
            return Path(self.run.dir).parent if self.run is not None else None
        except Exception:  # noqa: BLE001
            return None

    def _fail(self, op: str, err: BaseException | str, payload: dict | None = None):
        rec = {"time": time.time(), "op": op, "error": f"{type(err).__name__}: {err}" if isinstance(
            err, BaseException) else str(err)}
        if payload:
            rec.update(payload)
        self.failures.append(rec)
        if op not in self._warned:
            self._warned.add(op)
            warnings.warn(f"W&B {op} failed ({rec['error']}); not logged to W&B, results are kept in the store "
                          f"(see {self.dir / 'wandb_not_logged.jsonl'})", RuntimeWarning, stacklevel=3)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            with open(self.dir / "wandb_not_logged.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(rec, default=str, allow_nan=True) + "\n")
        except Exception:  # noqa: BLE001
            pass

    def _guard(self, op: str, fn, payload: dict | None = None):
        if self.mode == "disabled":
            return None
        if self.run is None:
            self._fail(op, "W&B run not available", payload)
            return None
        try:
            return fn()
        except Exception as e:  # noqa: BLE001
            self._fail(op, e, payload)
            return None

    def _log(self, data: dict):
        self.run.log(data, step=self._step)
        self._step += 1

    # ------------------------------------------------------------------ public API
    def log_rows(self, rows):
        """Per-image results: a DataFrame or a list of row dicts (store rows), e.g. one call per batch.

        Rows are buffered and logged as one W&B table (``per_image``) by :meth:`flush_rows` / :meth:`finish`; each
        call also logs the running batch means of the scalar metrics (``batch/<metric>``) and the image count.
        """
        import pandas as pd

        frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
        self._rows.extend(frame.to_dict("records"))
        if self.mode == "disabled" or frame.empty:
            return None

        def go():
            ok = frame[frame["status"] == "ok"] if "status" in frame.columns else frame
            vals = {"progress/images": len(self._rows)}
            for c in ok.columns:
                if "." in str(c) and not str(c).endswith(("_curve", "_skip")) and \
                        pd.api.types.is_numeric_dtype(ok[c]):
                    v = ok[c].mean()
                    if pd.notna(v):
                        vals[f"batch/{c}"] = float(v)
            self._log(vals)
            return vals

        return self._guard("log_rows", go, {"rows": int(len(frame))})

    def flush_rows(self, df=None, name: str = "per_image", drop_curves: bool = True):
        """Log the per-image table: ``df`` if given (e.g. the run's final store rows), else the buffered rows.

        Curve columns (``*_curve``, lists) are dropped by default (see :meth:`log_curves`); other list/dict
        values are stored as JSON text.
        """
        import pandas as pd

        frame = df if df is not None else pd.DataFrame(self._rows)
        frame = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(list(frame))

        def go():
            cols = [c for c in frame.columns if not (drop_curves and str(c).endswith("_curve"))]
            table = self._table(frame[cols])
            self._log({name: table})
            self._rows_logged = True
            return len(table.data)

        return self._guard("log_rows", go, {"table": name, "rows": int(len(frame)),
                                            "columns": [str(c) for c in frame.columns]})

    def summarize(self, df) -> dict[str, Any]:
        """Summary numbers of a run's rows: n, n ok, flagged per status, mean of every scalar metric over ok rows,
        mean seconds / passes per image."""
        import pandas as pd

        frame = df if isinstance(df, pd.DataFrame) else pd.DataFrame(list(df))
        out: dict[str, Any] = {"n_images": int(len(frame))}
        if "status" in frame.columns:
            out["n_ok"] = int((frame["status"] == "ok").sum())
            for st, n in frame.loc[frame["status"] != "ok", "status"].value_counts().items():
                out[f"n_{st}"] = int(n)
            ok = frame[frame["status"] == "ok"]
        else:
            ok = frame
        for c in ok.columns:
            if str(c).endswith(("_curve", "_skip")) or not pd.api.types.is_numeric_dtype(ok[c]) or \
                    pd.api.types.is_bool_dtype(ok[c]):
                continue
            if "." in str(c) or c in ("completeness_error", "seconds", "passes_fb", "passes_f"):
                v = ok[c].mean()
                if pd.notna(v):
                    out[str(c)] = float(v)
        return out

    def log_summary(self, values: Mapping[str, Any]):
        """Set summary values (e.g. mean DiffID, n ok / flagged, seconds per image)."""
        vals = {str(k): _jsonable(v) for k, v in dict(values).items()}

        def go():
            for k, v in vals.items():
                self.run.summary[k] = v
            return vals

        return self._guard("log_summary", go, {"summary": vals})

    def log_images(self, name: str, images, captions: Sequence[str] | None = None):
        """Log figures: a path / array or a list of them (arrays HxW, HxWxC in [0,1] or uint8)."""
        items = list(images) if isinstance(images, (list, tuple)) else [images]

        def go():
            wandb = self._wandb
            objs = []
            for i, it in enumerate(items):
                cap = captions[i] if captions is not None and i < len(captions) else None
                if isinstance(it, (str, Path)):
                    objs.append(wandb.Image(str(it), caption=cap or Path(it).stem))
                else:
                    a = np.asarray(it)
                    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
                        a = np.moveaxis(a, 0, -1)
                    if a.dtype != np.uint8:
                        a = (np.clip(a, 0, 1) * 255).round().astype(np.uint8)
                    objs.append(wandb.Image(a, caption=cap))
            self._log({name: objs if len(objs) > 1 else objs[0]})
            return len(objs)

        return self._guard("log_images", go, {"name": name, "images": [str(i) if isinstance(i, (str, Path))
                                                                         else f"array{np.shape(i)}" for i in items]})

    def log_curves(self, curves, name: str | None = None, x: Sequence[float] | None = None,
                   title: str | None = None, xname: str = "fraction"):
        """Log mean curves as W&B line plots.

        ``curves``: a DataFrame of store rows (every ``*_curve`` column becomes one plot with one line per method,
        the mean over rows with status ok), or a dict ``{line name: [K] or [B, K] values}`` plotted as ``name``.
        """
        def go():
            import pandas as pd

            from .figures import curve_x, mean_curves, trapezoid

            wandb = self._wandb
            plots = {}
            if isinstance(curves, pd.DataFrame):
                for col, lines in mean_curves(curves).items():
                    plots[col] = (lines, curve_x(col.split(".")[0], len(next(iter(lines.values())))))
            else:
                plots[name or "curve"] = ({k: np.asarray(v, dtype=float).reshape(-1, np.shape(v)[-1]).mean(0)
                                           for k, v in dict(curves).items()}, x)
            logged = {}
            for key, (lines, xs) in plots.items():
                if not lines:
                    continue
                k = len(next(iter(lines.values())))
                xs = list(map(float, xs)) if xs is not None else list(np.linspace(0, 1, k))
                keys = list(lines)
                logged[key.replace(".", "/")] = wandb.plot.line_series(
                    xs=xs, ys=[list(map(float, lines[m])) for m in keys], keys=keys, title=title or key,
                    xname=xname)
                for m in keys:  # the normalised area under each aggregated curve, also as summary numbers
                    self.run.summary[f"{key}_auc/{m}"] = trapezoid(lines[m], xs) / (xs[-1] - xs[0])
            if logged:
                self._log(logged)
            return list(logged)

        return self._guard("log_curves", go, {"name": name})

    def _table(self, frame):
        """A W&B table of a DataFrame (at most MAX_TABLE_ROWS rows; lists and dicts as JSON text)."""
        f = frame.head(MAX_TABLE_ROWS).copy()
        for c in f.columns:
            if f[c].dtype == object:
                f[c] = [json.dumps(_jsonable(v)) if isinstance(v, (list, tuple, dict, np.ndarray))
                        else (None if v is None else v if isinstance(v, (str, bool, int, float)) else str(v))
                        for v in f[c]]
        return self._wandb.Table(dataframe=f.reset_index(drop=True))

    def _bar(self, names, values, title: str, x: str = "method", y: str = "mean"):
        """A W&B bar chart (``wandb.plot.bar``: W&B's own panel over a W&B table) of ``values`` by ``names``."""
        import pandas as pd

        frame = pd.DataFrame({x: [str(n) for n in names], y: [float(v) for v in values]})
        return self._wandb.plot.bar(self._wandb.Table(dataframe=frame), x, y, title=title)

    def log_leaderboard(self, df, name: str = "leaderboard"):
        """The rows of ``table.csv`` that the job's rows ``df`` make (one per metric column: mean, 95% bootstrap
        interval, n; :func:`benchmarks.report.table.summarize`) as the W&B table ``name``, and a W&B bar chart of
        the means (``<name>_chart``)."""
        def go():
            from .table import PER_BATCH_COLUMNS, build_tables

            summary = build_tables(df, baseline=None, published=False).summary
            if summary.empty:
                return 0
            score = summary[~summary["column"].isin(PER_BATCH_COLUMNS) & summary["mean"].notna()]
            score = score.drop_duplicates(["variant", "column"])
            logged = {name: self._table(summary)}
            if len(score):
                who = ", ".join(dict.fromkeys(f"{d} / {m} / {v}" for d, m, v in
                                              zip(score["dataset"], score["model"], score["variant"])))
                logged[f"{name}_chart"] = self._bar(score["column"], score["mean"], f"{who}: mean per metric",
                                                    x="metric")
            self._log(logged)
            return len(summary)

        return self._guard("log_leaderboard", go, {"rows": int(len(df))})

    def log_report(self, out_dir, baseline: str | None = "ig", new_method: str | None = None, n_boot: int = 2000,
                   seed: int = 0):
        """The experiment of ``out_dir`` (its results store) as the report shows it, in W&B's tables and panels:
        tables ``leaderboard`` (= ``table.csv``), ``comparison`` (= ``comparison.csv``, against ``baseline`` or
        of ``new_method``), ``agreement`` and ``ranking`` (= ``agreement.csv``, ``agreement_ranking.csv``),
        ``per_image`` (the store's rows, curves left out); per (dataset, model, metric) a W&B bar chart of the
        means (``bar/<dataset>/<model>/<column>``) and the report's figures as ``wandb.Plotly``
        (``leaderboard/...``, ``forest/...``, and ``agreement/<dataset>/<model>``)."""
        def go():
            from . import dashboard as dash
            from .agreement import kendall, summary_ranking
            from .names import display_method
            from .table import PER_BATCH_COLUMNS, build_tables, load_results

            df = load_results(out_dir)
            t = build_tables(df, None, baseline, new_method, n_boot, seed, published=False)
            if t.summary.empty:
                return 0
            wandb = self._wandb
            tau, ranking = kendall(t.summary), summary_ranking(t.summary)
            cmp = t.comparison.drop(columns=["_anchor"], errors="ignore")
            logged = {"leaderboard": self._table(t.summary)}
            for key, frame in (("comparison", cmp), ("agreement", tau), ("ranking", ranking)):
                if len(frame):
                    logged[key] = self._table(frame)
            score = t.summary[~t.summary["column"].isin(PER_BATCH_COLUMNS)]
            for (d, m, col), g in score.groupby(["dataset", "model", "column"], sort=False):
                g = g.drop_duplicates("variant")
                g = g[g["mean"].notna()]
                if g.empty:
                    continue
                key = f"{d}/{m}/{col}"
                label, direction = str(g["label"].iloc[0]), str(g["direction"].iloc[0])
                flag = next((str(f) for f in g["flag"].fillna("") if f), "")
                logged[f"leaderboard/{key}"] = wandb.Plotly(dash.leaderboard_figure(g, label, direction, flag))
                logged[f"bar/{key}"] = self._bar([display_method(v) for v in g["variant"]], g["mean"],
                                                 f"{d} / {m}: {label}")
                c = cmp[(cmp["dataset"] == d) & (cmp["model"] == m) & (cmp["column"] == col)] if len(cmp) else cmp
                if len(c) and c["diff"].notna().any():
                    logged[f"forest/{key}"] = wandb.Plotly(dash.forest_figure(c, label, direction))
            for (d, m), _ in score.groupby(["dataset", "model"], sort=False):
                fig = dash.agreement_figure(tau[(tau["dataset"] == d) & (tau["model"] == m)],
                                            ranking[(ranking["dataset"] == d) & (ranking["model"] == m)])
                if fig is not None:
                    logged[f"agreement/{d}/{m}"] = wandb.Plotly(fig)
            self._log(logged)
            self.flush_rows(df)
            return list(logged)

        return self._guard("log_report", go, {"out_dir": Path(out_dir).name})

    def log_metrics(self, values: Mapping[str, Any]):
        """A plain ``run.log`` of scalars (for anything not covered above)."""
        vals = {str(k): _jsonable(v) for k, v in dict(values).items()}
        return self._guard("log_metrics", lambda: self._log(vals), {"values": vals})

    def finish(self, df=None, exit_code: int = 0):
        """Close the run (safe to call twice). With ``df`` (the run's rows as stored), log the per-image table,
        the summary (:meth:`summarize`) and the mean curves from it; else log the buffered rows' table."""
        if self.run is None:
            if self.mode != "disabled" and (df is not None or self._rows) and not self._rows_logged:
                self._fail("finish", "W&B run not available", {"rows": int(len(df) if df is not None
                                                                              else len(self._rows))})
            return
        if df is not None and len(df):
            self.flush_rows(df)
            self.log_leaderboard(df)
            self.log_summary(self.summarize(df))
            if any(str(c).endswith("_curve") for c in getattr(df, "columns", [])):
                self.log_curves(df)
        elif self._rows and not self._rows_logged:
            self.flush_rows()
            self.log_summary(self.summarize(self._rows))
        run_dir = self.run_dir
        try:
            self.run.finish(exit_code=exit_code)
            if self.mode == "offline" and run_dir is not None:
                self.saved_to = run_dir
        except Exception as e:  # noqa: BLE001
            self._fail("finish", e)
        finally:
            self.run = None

    def abort(self):
        """Close the run after an error in the job (buffered rows are still logged)."""
        self.finish(exit_code=1)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.finish(exit_code=0 if exc_type is None else 1)
        return False


# ---------------------------------------------------------------------------------------------- reading back
#: ``<name>_<step>_<hash>.<kind>.json``: how W&B names the file of a medium logged under ``name``
_MEDIA_FILE = re.compile(r"^(?P<name>.+)_(?P<step>\d+)_(?P<hash>[0-9a-f]+)\.(?P<kind>[a-z-]+)\.json$")


def _media(run_dir, kind: str) -> dict[str, list[tuple[int, Path]]]:
    """{logged name: [(step, file)]} of the media of ``kind`` (``table``, ``plotly``) W&B wrote for a run."""
    root = Path(run_dir) / "files" / "media" / kind
    out: dict[str, list[tuple[int, Path]]] = {}
    for f in sorted(root.rglob(f"*.{kind}.json")) if root.is_dir() else []:
        m = _MEDIA_FILE.match(f.name)
        if m and m["kind"] == kind:
            name = (f.parent.relative_to(root) / m["name"]).as_posix()  # a "/" in the name is a folder
            out.setdefault(name, []).append((int(m["step"]), f))
    return out


def logged(run_dir, kind: str = "table") -> list[str]:
    """The names under which a run logged media of ``kind`` (``table``, ``plotly``, ``html``), from W&B's files."""
    return sorted(_media(run_dir, kind))


def _last(run_dir, kind: str, name: str) -> Path:
    found = _media(run_dir, kind).get(name)
    if not found:
        raise FileNotFoundError(f"no {kind} {name!r} under {Path(run_dir) / 'files' / 'media' / kind}")
    return max(found)[1]


def read_table(run_dir, name: str):
    """The rows of the table a run logged under ``name`` (the last one), as W&B wrote them, as a DataFrame."""
    import pandas as pd

    t = json.loads(_last(run_dir, "table", name).read_text())
    return pd.DataFrame(t["data"], columns=t["columns"])


def read_plotly(run_dir, name: str) -> dict:
    """The Plotly figure (``{"data", "layout"}``) a run logged under ``name`` through ``wandb.Plotly``."""
    return json.loads(_last(run_dir, "plotly", name).read_text())


def offline_runs(directory) -> list[Path]:
    """The offline run folders under ``<directory>/wandb``, oldest first."""
    return sorted(Path(directory).glob("wandb/offline-run-*"), key=lambda p: p.name)


def report_to_wandb(out_dir, mode: str | None = None, project: str | None = None, group: str | None = None,
                    dir=None, baseline: str | None = "ig", new_method: str | None = None, n_boot: int = 2000,
                    seed: int = 0, **kw) -> WandbLogger:
    """Log the experiment of ``out_dir`` (:meth:`WandbLogger.log_report`) as one W&B run of job type ``report``
    (named after the folder, in ``group``); returns the closed logger (``.failures``, ``.saved_to``)."""
    out_dir = Path(out_dir)
    lg = WandbLogger({"out_dir": out_dir.name, "baseline": baseline, "new_method": new_method, "n_boot": n_boot,
                      "seed": seed}, mode=mode,
                     project=project, group=group, name=f"{out_dir.name}/report", job_type="report",
                     out_dir=dir if dir is not None else out_dir, **kw)
    lg.log_report(out_dir, baseline=baseline, new_method=new_method, n_boot=n_boot, seed=seed)
    lg.finish()
    return lg

"""Synthetic results-store frames with the CONTRACTS.md schema, where the answers are known."""
import json

import numpy as np
import pandas as pd

RATIOS = 9


def synth_store(datasets=("imagenet",), models=("resnet18", "vgg16"), methods=None, n=40, seed=0,
                flagged=None, with_curves=True, shard_of=1):
    """One row per image. ``methods``: {name: skill}; a method's per-image probability of keeping the
    true class when its top features are kept/removed grows/shrinks with its skill, so higher skill means
    higher DiffID. ``flagged``: {(dataset, model, method): {status: count}} rows marked not ok (metrics NaN)."""
    methods = methods or {"grad_input": 0.0, "ig": 0.3, "guided_ig": 0.6, "ma_gig": 0.9, "random": -0.5}
    rng = np.random.default_rng(seed)
    rows = []
    for dataset in datasets:
        ids = [f"{dataset}_{i:04d}" for i in range(n)]
        for model in models:
            hard = rng.normal(0, 0.5, size=n)  # per-image difficulty shared by all methods -> paired design
            for mi, (method, skill) in enumerate(methods.items()):
                bad = dict((flagged or {}).get((dataset, model, method), {}))
                for i, iid in enumerate(ids):
                    status = "ok"
                    for st, c in list(bad.items()):
                        if c > 0:
                            status, bad[st] = st, c - 1
                            break
                    p_ins = 1 / (1 + np.exp(-(0.3 + skill - hard[i] + np.linspace(-1.5, 1.5, RATIOS))))
                    p_del = 1 / (1 + np.exp(-(0.3 - skill - hard[i] - np.linspace(-1.5, 1.5, RATIOS) * 2)))
                    ins = (rng.random(RATIOS) < p_ins).astype(float)
                    dele = (rng.random(RATIOS) < p_del).astype(float)
                    rise_ins = np.clip(np.sort(rng.random(17)) * (0.6 + 0.2 * skill), 0, 1)
                    rise_del = np.clip(np.sort(rng.random(17))[::-1] * (0.6 - 0.2 * skill), 0, 1)
                    sic_curve = np.maximum.accumulate(np.clip(np.linspace(0, 1, 13) ** (1.5 - skill / 2)
                                                              + rng.normal(0, 0.05, 13), 0, 1))
                    aic_curve = np.round(sic_curve)
                    pic_skipped = i % 7 == 3  # PIC skips some images (low confidence): NaN value and curve
                    if pic_skipped:
                        sic_curve = aic_curve = np.full(13, np.nan)
                    pf_curve = np.sort(rng.random(8))[::-1] * (1 - 0.3 * skill)
                    row = dict(
                        dataset=dataset, model=model, method=method, method_hash=f"h{mi:02d}abcdef012",
                        config_hash="c0ffee", image_id=iid, label=i % 5, target=i % 5, pred=i % 5, status=status,
                        note=None if status == "ok" else "synthetic",
                        **{"diffid.diffid": ins.mean() - dele.mean(), "diffid.insertion": ins.mean(),
                           "diffid.deletion": dele.mean(),
                           "insertion_deletion.rise_insertion": float(rise_ins.mean()),
                           "insertion_deletion.rise_deletion": float(rise_del.mean()),
                           "pic.sic": float(sic_curve.mean()), "pic.aic": float(aic_curve.mean()),
                           "pic.sic_skip": 2 if pic_skipped else 0, "pic.aic_skip": 2 if pic_skipped else 0,
                           "quantus_pixel_flipping.quantus_pixel_flipping": float(pf_curve.mean()),
                           "quantus_infidelity.quantus_infidelity": float(rng.random())},
                        completeness_error=abs(rng.normal(0.05, 0.02)), seconds=0.01 * (mi + 1), passes_fb=200,
                        passes_f=0, device="cpu", versions=json.dumps({"torch": "x"}), git_commit="abc1234",
                        seed=0, shard=i % shard_of,
                    )
                    if with_curves:
                        row.update({"diffid.insertion_curve": ins.tolist(), "diffid.deletion_curve": dele.tolist(),
                                    "insertion_deletion.rise_insertion_curve": rise_ins.tolist(),
                                    "insertion_deletion.rise_deletion_curve": rise_del.tolist(),
                                    "pic.sic_curve": sic_curve.tolist(), "pic.aic_curve": aic_curve.tolist(),
                                    "quantus_pixel_flipping.quantus_pixel_flipping_curve": pf_curve.tolist()})
                    if status != "ok":
                        for k in list(row):
                            if k.startswith(("diffid.", "insertion_deletion.", "pic.", "quantus")):
                                row[k] = [] if k.endswith("_curve") else float("nan")
                    rows.append(row)
    return pd.DataFrame(rows)


def write_store(df, out_dir):
    """Write ``df`` as Parquet shards under ``out_dir/store`` like the runner does (one file per run)."""
    store = out_dir / "store"
    store.mkdir(parents=True, exist_ok=True)
    for (d, m, k, h), g in df.groupby(["dataset", "model", "method", "method_hash"]):
        g.to_parquet(store / f"{d}__{m}__{k}-{h}__shard0of1.parquet", index=False)
    return out_dir

#!/usr/bin/env python
"""Fine-tune an ImageNet classifier on Oxford-IIIT Pet or Oxford 102 Flower with the authors' head design, and
write a checkpoint that ``configs/model/<model>.yaml`` can name (``model.checkpoint=...``).

    python scripts/finetune_head.py --dataset oxford_pet --source /data/oxford-iiit-pet --model resnet18
    python scripts/finetune_head.py --dataset oxford_flowers --source /data/flowers102 --model vgg16 --epochs 30
    python scripts/finetune_head.py --dataset oxford_pet --source /data/oxford-iiit-pet --model vit_b16 \
        --out checkpoints/classifier_oxfordpet/vit_best.pt      # the ViT at 224 (its config's input size)
    # then: python -m benchmarks.run dataset=oxford_pet dataset.source=/data/oxford-iiit-pet model=resnet18 \
    #           model.checkpoint=checkpoints/classifier_oxford_pet/resnet18_best.pt ...

Heads (docs/upstream_methods.md section 7): resnet18 ``fc = Linear(512, C)``; vgg16
``Linear(25088,150)-BatchNorm1d(150)-ReLU-Dropout(0.5)-Linear(150,C)`` after AdaptiveAvgPool(7); inception_v1
(GoogLeNet) ``fc = Linear(1024, C)``; vit_b16 (torchvision ViT-B/16, SIG) ``heads.head = Linear(768, C)``. The
architecture, normalisation and input size come from the model config (``--image-size`` defaults to its
``input_size``: 256 for the papers' CNNs, 224 for the ViT).

Data: the papers' evaluation images are never trained on. Pet trains on ``paper_train`` (the 95% of the authors'
train_test_split) minus a seeded hold-out of ``--holdout`` for choosing the best epoch; Flowers trains on the
official ``train`` split and chooses the best epoch on ``test`` (the papers evaluate on ``valid``). Images get the
evaluation resize (SxS, no crop), then a random resized crop back to S (scale 0.6-1) and a horizontal flip.

Training: AdamW, the head at ``--lr`` and the pretrained backbone at ``--backbone-lr`` (0 freezes it), cosine
schedule with warm-up, bf16 autocast on CUDA. The checkpoint holds ``model_state_dict`` (the format the authors'
checkpoints have) plus arch, head, class names and the hold-out accuracy.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from attribution.classifiers import VGGPaperHead, create_model  # noqa: E402
from attribution.datasets import EvalDataset, build_dataset  # noqa: E402

TRAIN_SPLIT = {"oxford_pet": "paper_train", "oxford_flowers": "train"}
SELECT_SPLIT = {"oxford_pet": None, "oxford_flowers": "test"}  # None: a hold-out of the training split


def _model_config(args) -> dict:
    from omegaconf import OmegaConf

    path = Path(args.model_config or Path(__file__).resolve().parents[1] / "configs" / "model" / f"{args.model}.yaml")
    if not path.is_file():
        raise SystemExit(f"--model {args.model!r}: no model config at {path} (give --model-config)")
    raw = OmegaConf.load(path)
    if "model" in raw and "arch" not in raw:  # a global config (vit_b16, timm, torchvision): its model section
        raw = raw.model
    cfg = OmegaConf.to_container(raw, resolve=True)
    for key in ("arch", "library"):
        if getattr(args, key):
            cfg[key] = getattr(args, key)
    return cfg


def _head_params(model: nn.Module):
    if isinstance(model, VGGPaperHead):
        return list(model.classifier.parameters())
    heads = getattr(model, "heads", None)  # torchvision ViT: heads.head
    if isinstance(heads, nn.Module) and isinstance(getattr(heads, "head", None), nn.Linear):
        return list(heads.head.parameters())
    if hasattr(model, "get_classifier"):  # timm
        return list(model.get_classifier().parameters())
    for name in ("fc", "head", "classifier"):
        mod = getattr(model, name, None)
        if isinstance(mod, nn.Module):
            return list(mod.parameters())
    raise SystemExit(f"cannot find the classifier head of {type(model).__name__}")


def _loader(ds: EvalDataset, batch_size: int, shuffle: bool, workers: int, seed: int, drop_last: bool):
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=shuffle, num_workers=workers,
                                       collate_fn=EvalDataset.collate, generator=g, drop_last=drop_last,
                                       pin_memory=torch.cuda.is_available(), persistent_workers=workers > 0)


def evaluate(model, loader, mean, std, device, amp) -> float:
    model.eval()
    hit = n = 0
    with torch.no_grad():
        for batch in loader:
            if batch["images"] is None:
                continue
            x = ((batch["images"].to(device, non_blocking=True) - mean) / std)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                pred = model(x).argmax(1)
            hit += int((pred.cpu() == batch["labels"]).sum())
            n += len(pred)
    return hit / max(n, 1)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True, choices=sorted(TRAIN_SPLIT))
    ap.add_argument("--source", required=True, help="local dataset folder or hub id (as dataset.source)")
    ap.add_argument("--model", default="resnet18",
                    help="a configs/model/<name>.yaml (resnet18, vgg16, inception_v1, vit_b16)")
    ap.add_argument("--model-config", default=None, help="path of the model config (default: from --model)")
    ap.add_argument("--arch", default=None, help="override the config's arch")
    ap.add_argument("--library", default=None, help="override the config's library")
    ap.add_argument("--no-pretrained", action="store_true", help="start from random weights (smoke tests)")
    ap.add_argument("--out", default=None, help="default: checkpoints/classifier_<dataset>/<model>_best.pt")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3, help="head learning rate")
    ap.add_argument("--backbone-lr", type=float, default=1e-4, help="backbone learning rate (0 = frozen)")
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--warmup-epochs", type=float, default=1.0)
    ap.add_argument("--holdout", type=float, default=0.1, help="fraction of the Pet training split held out")
    ap.add_argument("--image-size", type=int, default=None, help="default: the model config's input_size (or 256)")
    ap.add_argument("--max-train", type=int, default=None, help="use only the first N training images (smoke)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-amp", action="store_true", help="disable bf16 autocast on CUDA")
    args = ap.parse_args(argv)

    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    amp = device.type == "cuda" and not args.no_amp
    mcfg = _model_config(args)
    head = mcfg.get("head") or "paper"
    if args.image_size is None:
        size = mcfg.get("input_size")
        args.image_size = size if isinstance(size, int) else 256

    full = build_dataset(args.dataset, source=args.source, split=TRAIN_SPLIT[args.dataset], subset_size=None,
                         image_size=args.image_size)
    num_classes = full.num_classes
    if SELECT_SPLIT[args.dataset] is None:
        g = torch.Generator().manual_seed(args.seed)
        perm = torch.randperm(len(full), generator=g).tolist()
        n_hold = max(1, int(round(args.holdout * len(full))))
        train_ds, sel_ds = full.select(sorted(perm[n_hold:])), full.select(sorted(perm[:n_hold]))
    else:
        train_ds = full
        sel_ds = build_dataset(args.dataset, source=args.source, split=SELECT_SPLIT[args.dataset], subset_size=None,
                               image_size=args.image_size)
    if args.max_train:
        train_ds = train_ds.select(range(min(args.max_train, len(train_ds))))
        sel_ds = sel_ds.select(range(min(args.max_train, len(sel_ds))))

    pretrained = mcfg.get("pretrained", True)
    model = create_model(mcfg["arch"], mcfg.get("library", "timm"), num_classes, head,
                         pretrained=False if args.no_pretrained else (pretrained if isinstance(pretrained, str)
                                                                      else True), in_chans=mcfg.get("in_chans", 3),
                         model_kwargs=mcfg.get("model_kwargs")).to(device)
    mean = torch.tensor(mcfg["mean"], device=device).view(1, -1, 1, 1)
    std = torch.tensor(mcfg["std"], device=device).view(1, -1, 1, 1)

    head_p = _head_params(model)
    ids = {id(p) for p in head_p}
    body_p = [p for p in model.parameters() if id(p) not in ids]
    groups = [{"params": head_p, "lr": args.lr}]
    if args.backbone_lr > 0:
        groups.append({"params": body_p, "lr": args.backbone_lr})
    else:
        for p in body_p:
            p.requires_grad_(False)
    opt = torch.optim.AdamW(groups, weight_decay=args.weight_decay)
    train_dl = _loader(train_ds, args.batch_size, True, args.workers, args.seed, drop_last=len(train_ds) >
                       args.batch_size)
    sel_dl = _loader(sel_ds, 2 * args.batch_size, False, args.workers, args.seed, drop_last=False)
    steps = max(1, args.epochs * len(train_dl))
    warm = int(args.warmup_epochs * len(train_dl))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(warm, 1)) * 0.5 *
                                              (1 + math.cos(math.pi * min(s, steps) / steps)))
    from torchvision.transforms import v2

    augment = v2.Compose([v2.RandomResizedCrop(args.image_size, scale=(0.6, 1.0), antialias=True),
                          v2.RandomHorizontalFlip()])
    out = Path(args.out or f"checkpoints/classifier_{args.dataset}/{args.model}_best.pt")
    out.parent.mkdir(parents=True, exist_ok=True)
    best, history, skipped = -1.0, [], set()
    for epoch in range(args.epochs):
        model.train()
        t0, seen, loss_sum = time.time(), 0, 0.0
        for batch in train_dl:
            skipped.update(i for i, _ in batch["skipped"])
            if batch["images"] is None or len(batch["labels"]) < 2:
                continue
            x = augment(batch["images"].to(device, non_blocking=True))
            x = (x - mean) / std
            y = batch["labels"].to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(x)
                if isinstance(logits, tuple):  # GoogLeNet in train mode with aux heads (not ours, but be safe)
                    logits = logits[0]
                loss = nn.functional.cross_entropy(logits.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            seen += len(y)
            loss_sum += float(loss.detach()) * len(y)
        acc = evaluate(model, sel_dl, mean, std, device, amp)
        history.append({"epoch": epoch + 1, "loss": loss_sum / max(seen, 1), "select_accuracy": acc,
                        "seconds": round(time.time() - t0, 1)})
        print(json.dumps(history[-1]), flush=True)
        if acc > best:
            best = acc
            state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            tmp = out.with_suffix(".tmp")
            torch.save({"model_state_dict": state, "arch": mcfg["arch"], "library": mcfg.get("library", "timm"),
                        "head": "paper" if isinstance(model, VGGPaperHead) else "linear", "num_classes": num_classes,
                        "class_names": full.class_names, "dataset": args.dataset, "epoch": epoch + 1,
                        "select_accuracy": acc, "select_split": SELECT_SPLIT[args.dataset] or
                        f"{args.holdout:.0%} hold-out of {TRAIN_SPLIT[args.dataset]}", "mean": list(mcfg["mean"]),
                        "std": list(mcfg["std"]), "input_size": args.image_size}, tmp)
            os.replace(tmp, out)
    summary = {"checkpoint": str(out), "best_select_accuracy": best, "epochs": args.epochs,
               "train_images": len(train_ds), "select_images": len(sel_ds), "num_classes": num_classes,
               "skipped_images": sorted(skipped), "history": history}
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}), flush=True)
    return summary


if __name__ == "__main__":
    main()

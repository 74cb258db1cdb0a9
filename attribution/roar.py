"""ROAR, RemOve And Retrain (Hooker, Erhan, Kindermans and Kim, NeurIPS 2019, arXiv 1806.10758).

For a map A of an image x [C,H,W], the pixel saliency is s_p = sum_c |A_c,p|. :func:`remove_top` replaces the
``n_removed(H*W, r)`` most salient pixels (all channels) by a fill value: the per-channel mean of the training set
(Hooker et al.), or the mean of the kept values (the SIG authors' variant). A classifier is then trained from
scratch on the modified training images (:func:`fit`) and its test accuracy (:func:`correct`) measures how much
information the removed pixels carried: the lower, the better the map ranks the pixels. A random map is the control
every method must beat; a blurred copy of a map (:func:`blur_map`) is the control for the known bias of ROAR towards
smooth maps (Song et al. 2023, arXiv 2304.13836).

Everything is batched on the device and deterministic: ties in the ranking are broken by a fixed, seeded order of
the pixel positions (the same for every image), and :func:`fit` draws its initialisation and its batches from
``seed``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from .errors import ConfigError, check_choice, check_int, check_real

FILLS = ("channel_mean", "kept_mean")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "cosine")


def n_removed(n_pixels: int, ratio: float) -> int:
    """Pixels removed at ``ratio``: ``n_pixels - int(n_pixels * (1 - ratio))`` (the SIG authors keep
    int(H*W*(1-r)) pixels: 921/716/512/307/102 of 1024 at r = 0.1/0.3/0.5/0.7/0.9)."""
    ratio = check_real("ratio", ratio, 0.0, 1.0)
    return int(n_pixels) - int(n_pixels * (1.0 - ratio))


def pixel_saliency(attr: torch.Tensor) -> torch.Tensor:
    """s = sum_c |A_c| of [B,C,H,W] (or [B,H,W], taken as one channel) -> [B,H,W] float32."""
    if attr.dim() == 3:
        return attr.abs().float()
    if attr.dim() != 4:
        raise ValueError(f"attr must be [B,C,H,W] or [B,H,W], got shape {tuple(attr.shape)}")
    return attr.abs().float().sum(1)


def tie_order(n_pixels: int, seed: int = 0, device=None) -> torch.Tensor:
    """A fixed permutation of the pixel positions (seeded on the CPU): the order in which tied pixels go."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.randperm(int(n_pixels), generator=g).to(device)


def removal_order(attr: torch.Tensor, tie_seed: int = 0) -> torch.Tensor:
    """[B, H*W] pixel indices, most salient first. The sort is stable over the positions taken in
    :func:`tie_order`, so equal saliencies (a map that is zero on the background) go in a fixed, seeded order
    rather than in raster order (which would remove the image's top rows first)."""
    s = pixel_saliency(attr).flatten(1)
    perm = tie_order(s.shape[1], tie_seed, s.device)
    order = torch.sort(s[:, perm], dim=1, descending=True, stable=True).indices
    return perm[order]


def removal_mask(attr: torch.Tensor, ratio: float, tie_seed: int = 0) -> torch.Tensor:
    """[B,1,H,W] bool: True on the ``n_removed(H*W, ratio)`` most salient pixels of each map."""
    s = pixel_saliency(attr)
    b, h, w = s.shape
    k = n_removed(h * w, ratio)
    mask = torch.zeros(b, h * w, dtype=torch.bool, device=s.device)
    if k:
        mask.scatter_(1, removal_order(attr, tie_seed)[:, :k], True)
    return mask.view(b, 1, h, w)


def remove_top(x: torch.Tensor, attr: torch.Tensor, ratio: float, fill: str | float = "channel_mean",
               mean: Sequence[float] | torch.Tensor | None = None, tie_seed: int = 0) -> torch.Tensor:
    """x with the top ``ratio`` of its pixels (by sum_c |A|) replaced, in every channel, by the fill:

    - ``"channel_mean"``: ``mean`` [C], the per-channel mean of the training images in x's space (Hooker et al.);
    - ``"kept_mean"``: the mean over channels and kept pixels of each image (the SIG authors' ROAR script);
    - a number: that value.
    """
    if x.dim() != 4:
        raise ValueError(f"x must be [B,C,H,W], got shape {tuple(x.shape)}")
    if tuple(pixel_saliency(attr).shape) != (x.shape[0], *x.shape[2:]):
        raise ValueError(f"attr of shape {tuple(attr.shape)} does not cover x of shape {tuple(x.shape)}")
    mask = removal_mask(attr, ratio, tie_seed).to(x.device)
    if isinstance(fill, (int, float)) and not isinstance(fill, bool):
        value = torch.full((x.shape[0], x.shape[1], 1, 1), float(fill), dtype=x.dtype, device=x.device)
    elif fill == "channel_mean":
        if mean is None:
            raise ConfigError("fill='channel_mean' needs mean=: the per-channel mean of the training images "
                              "(channel_means(train_x))")
        m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).reshape(-1)
        if m.numel() != x.shape[1]:
            raise ConfigError(f"mean has {m.numel()} values but x has {x.shape[1]} channels: one per channel")
        value = m.view(1, -1, 1, 1).expand(x.shape[0], -1, 1, 1)
    elif fill == "kept_mean":
        keep = (~mask).to(x.dtype)
        n_keep = (keep.sum((1, 2, 3)) * x.shape[1]).clamp_min(1)
        value = ((x * keep).sum((1, 2, 3)) / n_keep).view(-1, 1, 1, 1).expand(-1, x.shape[1], 1, 1)
    else:
        raise ConfigError(f"invalid fill={fill!r}: one of {list(FILLS)} or a number")
    return torch.where(mask, value, x)


def channel_means(x: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """[C] mean of [N,C,H,W] per channel (accumulated in float64 over chunks)."""
    total = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device)
    for xb in x.split(chunk):
        total += xb.double().sum((0, 2, 3))
    return (total / (x.shape[0] * x.shape[2] * x.shape[3])).float()


def blur_map(attr: torch.Tensor, sigma: float) -> torch.Tensor:
    """The blur control: the pixel saliency sum_c |A| convolved with a Gaussian of std ``sigma`` pixels
    (reflect padding), [B,1,H,W]. ROAR favours such smooth maps (Song et al. 2023)."""
    from .engine.blur import gaussian_blur

    sigma = check_real("sigma", sigma, 0.0)
    return gaussian_blur(pixel_saliency(attr).unsqueeze(1), sigma)


# ------------------------------------------------------------------------------------------------------------
# Retraining
# ------------------------------------------------------------------------------------------------------------
def recalibrate_batchnorm(model: torch.nn.Module, x: torch.Tensor, batch: int = 250) -> None:
    """Recompute the BatchNorm running statistics as exact averages over ``x`` (the un-augmented training images)
    with the final weights, then switch to eval mode. Short schedules otherwise leave the running averages behind
    the weights (eval accuracy far below train-mode accuracy)."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if bns:
        momenta = [m.momentum for m in bns]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average
        model.train()
        with torch.no_grad():
            for xb in x.split(batch):
                model(xb)
        for m, mom in zip(bns, momenta):
            m.momentum = mom
    model.eval()


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Top-1 predictions [N] of ``model`` (eval mode) on ``x``, in batches."""
    model.eval()
    return torch.cat([model(xb).argmax(1) for xb in x.split(batch_size)]) if len(x) else torch.empty(0).long()


def correct(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """[N] bool: the model's top-1 prediction equals ``y`` (per test image, for intervals over images)."""
    return predict(model, x, batch_size) == y.to(x.device)


def fit(factory: Callable[[], torch.nn.Module], x: torch.Tensor, y: torch.Tensor, epochs: int,
        batch_size: int = 128, optimizer: str = "adam", lr: float = 3e-4, momentum: float = 0.9,
        weight_decay: float = 0.0, schedule: str = "constant", seed: int = 0, drop_last: bool = True,
        recalibrate_bn: bool = True, x_val: torch.Tensor | None = None, y_val: torch.Tensor | None = None,
        keep_best: bool = False, on_epoch: Callable[[int, float], None] | None = None
        ) -> tuple[torch.nn.Module, list[float]]:
    """Train ``factory()`` from scratch on (x, y) with cross-entropy; return the model (eval mode) and the
    accuracy on (x_val, y_val) after each epoch (empty without them).

    ``torch.manual_seed(seed)`` precedes ``factory()`` (the initialisation) and a generator seeded with ``seed``
    draws the batch order, so a run is repeatable (bit-exact on the CPU). The SIG authors' settings: base model
    ``optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4, schedule="cosine"`` for 200 epochs; retraining
    ``optimizer="adam", lr=3e-4`` for 100 epochs; batch 128, shuffled, last partial batch dropped.
    ``recalibrate_bn`` replaces the BatchNorm running statistics by exact averages over x at the end (with
    ``keep_best``, after every epoch). ``keep_best`` returns the weights of the epoch most accurate on
    (x_val, y_val) (the SIG authors report that best test accuracy: a selection on the test set) instead of the
    last epoch's.
    """
    epochs = check_int("epochs", epochs, 0)
    batch_size = check_int("batch_size", batch_size, 1)
    optimizer = check_choice("optimizer", optimizer, OPTIMIZERS)
    schedule = check_choice("schedule", schedule, SCHEDULES)
    lr = check_real("lr", lr, 0.0, low_open=True)
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"fit needs as many labels as images (got {len(x)} images, {len(y)} labels), at least one")
    torch.manual_seed(int(seed))
    model = factory().to(x.device)
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    n = len(x)
    per_epoch = n // batch_size if drop_last and n >= batch_size else -(-n // batch_size)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs * per_epoch, 1))
             if schedule == "cosine" else None)
    g = torch.Generator().manual_seed(int(seed))
    y = y.to(x.device)
    history: list[float] = []
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n, generator=g).to(x.device)
        for k in range(per_epoch):
            idx = order[k * batch_size:(k + 1) * batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
        if x_val is not None and y_val is not None:
            if recalibrate_bn and keep_best:  # the kept weights come with exact statistics
                recalibrate_batchnorm(model, x, max(batch_size, 256))
            history.append(float(correct(model, x_val, y_val).float().mean()))
            if keep_best and history[-1] >= max(history):
                best = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if on_epoch is not None:
                on_epoch(epoch, history[-1])
    if keep_best and history:
        model.load_state_dict(best)
    elif recalibrate_bn:
        recalibrate_batchnorm(model, x, max(batch_size, 256))
    model.eval()
    return model, history


__all__ = ["FILLS", "n_removed", "pixel_saliency", "tie_order", "removal_order", "removal_mask", "remove_top",
           "channel_means", "blur_map", "recalibrate_batchnorm", "fit", "predict", "correct"]

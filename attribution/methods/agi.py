"""AGI — Adversarial Gradient Integration (Pan et al., IJCAI 2021), as the MA-GIG/SIG authors run it
(``cleanig/explainer/agi.py``, the "path-style" variant; docs/upstream_methods.md §2.8), batched over
images x target classes.

For each image with label y and each target class t in ``agi_target_classes(num_classes, num_neg_cls)``
other than y, starting from x_0 = x, for k = 0 .. max_iter-1::

    if argmax f(x_k) == t: stop                       (no gradient for this iterate)
    g_adv = grad p_t(x_k),  g_lab = grad p_y(x_k)      (p = softmax(logits); one forward, two backward)
    x_{k+1} = clamp(x_k + step_size * sign(g_adv), lo, hi)
    attr   += -g_lab * (x_{k+1} - x_k)

Attribution = sum over targets and steps (no normalisation). ``step_size`` is in the classifier's
(normalised) input units. ``lo``/``hi`` are the per-channel images of pixels 0 and 1 under the
normalisation (``mean``/``std``; omitted = identity, i.e. [0, 1]; upstream defaults to ImageNet
statistics instead). The authors' header notes that the official AGI steps from the fixed original image
every iteration; they (and we) step from the current perturbed image. AGI always explains the softmax
probability upstream (their ``exp_obj`` is ignored); ``objective="logit"`` differentiates logits instead.

Batching: every (image, target) pair is one row; rows whose argmax reached their target are frozen and
dropped from later forwards. ``extras``: ``targets`` [T] (the class list), ``valid`` [B,T] (False where
t == y), ``iterations`` [B,T] (steps taken), ``success`` [B,T] (stopped because argmax == t).

Cost per image (upper bound, T = number of targets): 1 forward-only row (the input, to read the class
count and skip targets already predicted at x), at most T*max_iter forward+backward rows and as many
extra backward rows. Parameter gradients are never formed.
"""
from __future__ import annotations

import torch

from ..engine.objective import target_score
from ..errors import ConfigError, check_int, check_real
from .base import Attribution, AttributionMethod, register_method


def agi_target_classes(num_classes: int, num_neg_cls: int) -> list[int]:
    """Upstream's adversarial targets: ``range(0, num_classes - 1, max(1, int(num_classes / num_neg_cls)))``.

    The image's own label is skipped at run time. Examples (num_neg_cls=10): 1000 classes -> 0,100,..,900
    (10); 37 -> 0,3,..,33 (12); 102 -> 0,10,..,100 (11); 10 -> 0..8 (9: the last class is never a target,
    a quirk inherited from the official ``range(0, 999, ...)``).
    """
    return list(range(0, num_classes - 1, max(1, int(num_classes / num_neg_cls))))


@register_method("agi", display="AGI", order=6)
class AGI(AttributionMethod):
    """Adversarial Gradient Integration (see the module docstring)."""

    name = "agi"
    is_path = False

    def __init__(self, num_neg_cls: int = 10, step_size: float = 0.05, max_iter: int = 15,
                 num_classes: int | None = None, **kwargs):
        self.num_neg_cls = check_int("num_neg_cls", num_neg_cls, 1, allowed="an integer >= 1")
        self.step_size = check_real("step_size", step_size, 0, low_open=True, allowed="a number > 0")
        self.max_iter = check_int("max_iter", max_iter, 1, allowed="an integer >= 1")
        self.num_classes = check_int("num_classes", num_classes, 2, allow_none=True,
                                     allowed="None (read from the logits) or an integer >= 2")
        super().__init__(**kwargs)

    def _rows(self, model, a, tt):
        """Forward at rows ``a`` (targets tt[:,0], labels tt[:,1]); gradients only for rows not yet at t."""
        t, y = tt[:, 0], tt[:, 1]
        with torch.enable_grad():
            xr = a.detach().requires_grad_(True)
            with self.evaluator.autocast_context(a.device):
                logits = model(xr)
            pred = logits.max(1)[1]
            live = (pred != t).float()
            s_adv = target_score(logits, t, self.objective) * live
            s_lab = target_score(logits, y, self.objective) * live
            (g_adv,) = torch.autograd.grad(s_adv.sum(), xr, retain_graph=True)
            (g_lab,) = torch.autograd.grad(s_lab.sum(), xr)
        return g_adv.float(), g_lab.float(), pred

    def _attribute(self, model, x, target):
        b = x.shape[0]
        ev = self.evaluator
        with torch.no_grad(), ev.autocast_context(x.device):
            logits0 = ev.map_rows(lambda a: model(a).float(), x)
        k = logits0.shape[1]
        if self.num_classes is not None and self.num_classes != k:
            raise ConfigError(f"agi was built with num_classes={self.num_classes} but the model has {k} outputs")
        classes = agi_target_classes(k, self.num_neg_cls)
        if (target >= k).any() or (target < 0).any():
            raise ConfigError(f"target classes must lie in [0, {k}); got {target.tolist()}")
        n_t = len(classes)
        tcls = torch.tensor(classes, dtype=torch.long, device=x.device)
        valid = tcls.view(1, -1) != target.view(-1, 1)  # [B, T]
        done = ~valid | (logits0.max(1)[1].view(-1, 1) == tcls.view(1, -1))
        success = valid & done
        tt = torch.stack([tcls.repeat(b), target.repeat_interleave(n_t)], dim=1)  # row = image*T + j
        done = done.reshape(-1)
        success = success.reshape(-1)
        iters = torch.zeros(b * n_t, dtype=torch.long, device=x.device)
        cur = x.repeat_interleave(n_t, dim=0)
        acc = torch.zeros_like(cur)
        lo, hi = self.norm.pixel_bounds(x[:1])
        for _ in range(self.max_iter):
            idx = (~done).nonzero().squeeze(1)
            if idx.numel() == 0:
                break
            pts = cur.index_select(0, idx)
            g_adv, g_lab, pred = ev.map_rows(lambda a, t: self._rows(model, a, t), pts, tt.index_select(0, idx))
            hit = pred == tt.index_select(0, idx)[:, 0]
            done[idx[hit]] = True
            success[idx[hit]] = True
            keep = ~hit
            idx, pts, g_adv, g_lab = idx[keep], pts[keep], g_adv[keep], g_lab[keep]
            if idx.numel() == 0:
                break
            perturbed = pts + self.step_size * g_adv.sign()
            rect = torch.max(torch.min(perturbed, hi), lo)
            acc.index_copy_(0, idx, acc.index_select(0, idx) + (-g_lab * (rect - pts)))
            cur.index_copy_(0, idx, rect)
            iters[idx] += 1
        attr = torch.zeros_like(x)
        acc = acc.view(b, n_t, *x.shape[1:])
        for j in range(n_t):  # upstream order: step_grad += c_delta, target by target
            attr = attr + acc[:, j]
        extras = {"targets": tcls, "valid": valid, "iterations": iters.view(b, n_t),
                  "success": success.view(b, n_t)}
        return Attribution(attr, extras=extras)

    def n_targets(self, num_classes: int | None = None) -> int:
        """Number of target classes before removing the label (an upper bound on targets per image)."""
        return len(agi_target_classes(num_classes or self.num_classes or 1000, self.num_neg_cls))

    def cost(self, height: int = 256, width: int = 256):
        """Upper bound per image; the class count is ``num_classes`` if given, else 1000 (ImageNet)."""
        t = self.n_targets()
        return {"fb": t * self.max_iter, "b": t * self.max_iter, "f": 1}

    def __repr__(self):
        return (f"AGI(num_neg_cls={self.num_neg_cls}, step_size={self.step_size}, max_iter={self.max_iter}, "
                f"num_classes={self.num_classes})")

"""IG² — Integrated Gradients on the Iterative Gradient path (Zhuo & Ge, TPAMI 2024), as the MA-GIG/SIG
authors compute it (``cleanig/explainer/ig2.py``; docs/upstream_methods.md §2.9), batched over images x references.

The path starts at the input and walks, by normalised gradient steps, toward the *representation* of a
reference image (the input of a hooked layer, normally the classifier head)::

    p_0 = x,   p_{i+1} = p_i + step_size * g_i / max(||g_i||_2, 1e-10),
    g_i = grad_x [ -MSE(rep(p_i), rep(ref)) ]            (i = 0 .. steps-1; one copy of x per reference)

    attr = mean_refs  sum_{i=1}^{steps} grad f_y(p_{i-1}) * (p_{i-1} - p_i)

so ``sum(attr) ~= f(x) - mean_refs f(p_steps)`` (the sign makes the input the "end" of the path). In the
returned :class:`Attribution`, ``f_end = f(x)`` and ``f_start = mean_refs f(p_steps)``, so
``completeness`` is the usual relative error. There is no clamping (upstream does not clamp either).

Representation layer (``rep_layer``): the *input* of a module. ``None`` auto-detects, in the authors'
order and then for timm: ``fc`` (torchvision/timm ResNet, GoogLeNet, Inception), ``heads.head``
(torchvision ViT), ``pre_logits`` (timm VGG: the pool5 map; torchvision VGG's ``classifier[0]`` sees
the same map after a 7x7 adaptive pool + flatten, identical at 224 px), ``classifier`` (``[0]`` of a
``Sequential``: torchvision VGG's flattened pool5), ``linear`` (CIFAR PreActResNet), and finally timm's
``get_classifier()``. Wrappers exposing the network as ``.model``/``.module``/``.net`` are looked through.
Pass a module name (``model.get_submodule`` syntax, e.g. ``"head"`` or ``"classifier.0"``) to choose.

Reference bank: ``references=`` (a [M,C,H,W] tensor in the classifier's input space, given at construction
or later via :meth:`IG2.set_references`). Upstream uses the first 100 images of the evaluation loader (for
ImageNet these are the first 100 *evaluated* images) and draws ``randperm(100)[:n_references]`` per image
from the global RNG, the image itself included. Here the draw uses a dedicated generator, re-seeded with
``seed`` at every call (so a batch's draws do not depend on what ran before, e.g. after a resume or in
another shard): per image, ``n_references`` distinct bank indices (``reference_mode="random"``) or the
first ones (``"first"``, upstream's other branch). ``exclude_self=True`` removes bank entries that are
bit-identical to the image (default False = upstream). **Without a bank**, each image draws from the
*other* images of its batch (itself always excluded, so the batch must hold ``n_references + 1``
images); call ``set_references`` for the authors' protocol. The drawn indices are returned in
``extras["reference_indices"]`` ([B, R]; indices into the bank, or into the batch).

``n_references``: 1 reproduces the MA-GIG repository (its class default; no YAML sets it); the SIG
repository's class default is 3.

Cost: the path search and the integration need gradients at the same points p_0 .. p_{steps-1}, so one
forward per point feeds two backward passes (upstream runs two separate forward+backward passes):
``steps`` forward+backward rows plus ``steps`` extra backward rows per reference, plus forward-only rows
for the references' representations (1 per reference) and for f at the path end (1 per reference).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..engine.objective import target_score
from ..errors import ConfigError, check, check_bool, check_choice, check_int, check_real
from .base import Attribution, AttributionMethod, check_references, register_method

REFERENCE_MODES = ("random", "first")
_WRAPPER_ATTRS = ("model", "module", "net")


def _is_identity(m) -> bool:
    return isinstance(m, nn.Identity)


def find_representation_layer(model: nn.Module, name: str | None = None) -> tuple[str, nn.Module]:
    """(name, module) whose *input* is IG²'s representation; ``name`` picks it explicitly."""
    if name is not None:
        try:
            return name, model.get_submodule(name)
        except AttributeError as e:
            names = [n for n, _ in model.named_modules() if n][:30]
            raise ConfigError(f"invalid rep_layer={name!r}: not a submodule of {type(model).__name__}; "
                              f"some submodules: {names}") from e
    found = _auto_layer(model, "")
    if found is None:
        children = [n for n, _ in model.named_children()]
        raise ConfigError(f"IG2 cannot find the representation layer of {type(model).__name__} (looked for fc, "
                          f"heads.head, pre_logits, classifier, linear, get_classifier()); pass rep_layer=<module "
                          f"name>, e.g. one of {children}")
    return found


def _auto_layer(model: nn.Module, prefix: str):
    def named(attr_path):
        mod = model
        for part in attr_path.split("."):
            mod = getattr(mod, part, None)
            if not isinstance(mod, nn.Module):
                return None
        return None if _is_identity(mod) else (prefix + attr_path, mod)

    for path in ("fc", "heads.head", "pre_logits"):
        hit = named(path)
        if hit is not None:
            return hit
    clf = getattr(model, "classifier", None)
    if isinstance(clf, nn.Sequential) and len(clf) > 0:
        return prefix + "classifier.0", clf[0]
    for path in ("classifier", "linear"):
        hit = named(path)
        if hit is not None:
            return hit
    get_clf = getattr(model, "get_classifier", None)
    if callable(get_clf):
        try:
            head = get_clf()
        except Exception:  # noqa: BLE001 - a model's own helper may not be callable without args
            head = None
        if isinstance(head, nn.Module) and not _is_identity(head):
            for n, m in model.named_modules():
                if m is head and n:
                    return prefix + n, m
    for attr in _WRAPPER_ATTRS:
        inner = getattr(model, attr, None)
        if isinstance(inner, nn.Module) and inner is not model:
            hit = _auto_layer(inner, f"{prefix}{attr}.")
            if hit is not None:
                return hit
    return None


class _InputCapture:
    """Forward hook that keeps the first positional input of the hooked module."""

    def __init__(self):
        self.features = None

    def __call__(self, module, args, output):
        self.features = args[0] if isinstance(args, tuple) else args

    def take(self) -> torch.Tensor:
        if self.features is None:
            raise RuntimeError("the representation layer was not called during the forward pass; set rep_layer")
        f, self.features = self.features, None
        return f.flatten(1)


def _normalize_by_2norm(g: torch.Tensor) -> torch.Tensor:
    """g / max(||g||_2, 1e-10) per row (upstream ``normalize_by_2norm``)."""
    norm = torch.norm(g.reshape(g.shape[0], -1), p=2, dim=1, keepdim=True).clamp(min=1e-10)
    return g / norm.view(g.shape[0], *([1] * (g.dim() - 1)))


@register_method("ig2", display="IG²", latex=r"IG$^2$", order=7, needs_bank=True, aliases=("ig²",))
class IG2(AttributionMethod):
    """IG² (see the module docstring for the equations, the reference bank and the defaults)."""

    name = "ig2"
    is_path = True

    def __init__(self, steps: int = 201, step_size: float = 0.02, reference_mode: str = "random",
                 n_references: int = 1, references: torch.Tensor | None = None, rep_layer: str | None = None,
                 seed: int = 0, exclude_self: bool = False, **kwargs):
        self.steps = check_int("steps", steps, 1, allowed="an integer >= 1")
        self.step_size = check_real("step_size", step_size, 0, low_open=True, allowed="a number > 0")
        self.reference_mode = check_choice("reference_mode", reference_mode, REFERENCE_MODES,
                                           allowed=f"choose one of {REFERENCE_MODES}")
        self.n_references = check_int("n_references", n_references, 1, allowed="an integer >= 1")
        check(rep_layer is None or (isinstance(rep_layer, str) and rep_layer != ""), "rep_layer", rep_layer,
              "None (auto-detect) or a module name")
        self.rep_layer = rep_layer
        self.seed = check_int("seed", seed)
        self.exclude_self = check_bool("exclude_self", exclude_self)
        super().__init__(**kwargs)
        self.references = None
        self.last_rep_layer: str | None = None
        if references is not None:
            self.set_references(references)

    # -- reference bank ------------------------------------------------------------------------------
    def set_references(self, references: torch.Tensor | None) -> None:
        """Set the reference bank: [M,C,H,W] float images in the classifier's input space (None = use the batch)."""
        references = check_references(references)
        if references is not None and references.shape[0] < self.n_references:
            raise ConfigError(f"the reference bank holds {references.shape[0]} images but n_references="
                              f"{self.n_references}")
        self.references = references

    def _bank(self, x: torch.Tensor):
        """(bank [M,C,H,W] on x.device, excluded [B,M] bool)."""
        b = x.shape[0]
        if self.references is None:
            return x, torch.eye(b, dtype=torch.bool, device=x.device)
        bank = self.references.to(x.device)
        if bank.shape[1:] != x.shape[1:]:
            raise ConfigError(f"reference images have shape {tuple(bank.shape[1:])} but the inputs "
                              f"{tuple(x.shape[1:])}")
        excluded = torch.zeros(b, bank.shape[0], dtype=torch.bool, device=x.device)
        if self.exclude_self:
            per = max(1, (1 << 26) // max(1, b * x[0].numel()))
            for s in range(0, bank.shape[0], per):  # chunks of bank rows, all images at once
                chunk = bank[s:s + per]
                excluded[:, s:s + per] = (x[:, None] == chunk[None]).flatten(2).all(2)
        return bank, excluded

    def draw_references(self, n_images: int, excluded: torch.Tensor) -> torch.Tensor:
        """Indices [B, R] into the bank: distinct per image, seeded by ``seed`` (see the module docstring)."""
        excluded = excluded.cpu()
        m = excluded.shape[1]
        available = int((~excluded).sum(1).min()) if n_images else m
        if available < self.n_references:
            where = "the batch (no reference bank set)" if self.references is None else "the reference bank"
            raise ConfigError(f"IG2 needs n_references={self.n_references} references per image but {where} "
                              f"offers only {available} (after excluding the image itself); pass references= "
                              f"or set_references(...) with more images")
        if self.reference_mode == "random":
            gen = torch.Generator().manual_seed(self.seed)
            keys = torch.rand(n_images, m, generator=gen, dtype=torch.float64)
        else:
            keys = torch.arange(m, dtype=torch.float64).expand(n_images, m).clone()
        keys[excluded] = float("inf")
        return keys.argsort(dim=1, stable=True)[:, :self.n_references]

    # -- gradients -----------------------------------------------------------------------------------
    def _rep_rows(self, model, hook, a):
        with torch.no_grad(), self.evaluator.autocast_context(a.device):
            model(a)
        return hook.take().float().clone()

    def _end_rows(self, model, hook, a, idx, ref_rep, target):
        with torch.no_grad(), self.evaluator.autocast_context(a.device):
            logits = model(a)
        rep = hook.take().float()
        score = target_score(logits, target[idx], self.objective)
        return score, ((rep - ref_rep[idx]) ** 2).mean(1)

    def _step_rows(self, model, hook, a, idx, ref_rep, target):
        """One forward at the rows ``a``, two backward passes: the representation pull and f_y."""
        r = self.n_references
        with torch.enable_grad():
            xr = a.detach().requires_grad_(True)
            with self.evaluator.autocast_context(a.device):
                logits = model(xr)
            rep = hook.take().float()
            sq = (rep - ref_rep[idx]) ** 2
            # upstream: -F.mse_loss over the R copies of one image, i.e. a mean over R*D elements
            loss = -sq.sum() / (r * rep.shape[1])
            score = target_score(logits, target[idx], self.objective)
            (g_rep,) = torch.autograd.grad(loss, xr, retain_graph=True)
            (g_lab,) = torch.autograd.grad(score.sum(), xr)
        return g_rep.float(), g_lab.float(), score.detach(), sq.detach().mean(1)

    # -- main ----------------------------------------------------------------------------------------
    def _attribute(self, model, x, target):
        b, r = x.shape[0], self.n_references
        bank, excluded = self._bank(x)
        ref_idx = self.draw_references(b, excluded)  # [B, R] on CPU
        self.last_rep_layer, layer = find_representation_layer(model, self.rep_layer)
        hook = _InputCapture()
        handle = layer.register_forward_hook(hook)
        ev = self.evaluator
        try:
            refs = bank.index_select(0, ref_idx.reshape(-1).to(bank.device))  # row b*R + j
            rows = torch.arange(b * r, device=x.device)
            ref_rep = ev.map_rows(lambda a: self._rep_rows(model, hook, a), refs)
            xr = x.repeat_interleave(r, dim=0)
            tr = target.repeat_interleave(r)
            delta = torch.zeros_like(xr)
            attr_rows = torch.zeros_like(xr)
            cur = xr + delta
            f_x = dist_start = None
            for i in range(self.steps):
                g_rep, g_lab, score, dist = ev.map_rows(
                    lambda a, idx: self._step_rows(model, hook, a, idx, ref_rep, tr), cur, rows)
                if i == 0:
                    f_x, dist_start = score, dist
                delta = delta + _normalize_by_2norm(g_rep) * self.step_size
                new = xr + delta
                attr_rows = attr_rows + (cur - new) * g_lab
                cur = new
            f_path_end, dist_end = ev.map_rows(
                lambda a, idx: self._end_rows(model, hook, a, idx, ref_rep, tr), cur, rows)
        finally:
            handle.remove()
        attr = attr_rows.view(b, r, *x.shape[1:]).mean(dim=1)
        extras = {
            "reference_indices": ref_idx.to(x.device),
            "f_path_end_per_reference": f_path_end.view(b, r),
            "rep_mse_start": dist_start.view(b, r),
            "rep_mse_end": dist_end.view(b, r),
        }
        return Attribution(attr, f_start=f_path_end.view(b, r).mean(1), f_end=f_x.view(b, r)[:, 0], extras=extras)

    def cost(self, height: int = 256, width: int = 256):
        r = self.n_references
        return {"fb": self.steps * r, "b": self.steps * r, "f": 2 * r}

    def __repr__(self):
        return (f"IG2(steps={self.steps}, step_size={self.step_size}, n_references={self.n_references}, "
                f"reference_mode={self.reference_mode!r}, rep_layer={self.rep_layer!r}, seed={self.seed})")

"""Checks of a dataset against its classifier, before any work: the classifier must take the dataset's images.

A classifier that cannot take them (a ViT at another input size, a 3-channel model on grey-scale images) fails
here with the keys that fix it, instead of after loading everything with a raw error from inside the model.
"""
from __future__ import annotations

import torch
from torch import nn

from attribution.errors import ConfigError

#: readable images looked at to find the dataset's image shape
_PROBE = 16


def first_shape(dataset) -> tuple[int, ...] | None:
    """[C, H, W] of the first readable image of ``dataset`` (None if none of the first few is readable)."""
    for k in range(min(len(dataset), _PROBE)):
        s = dataset[k]
        if s.image is not None:
            return tuple(s.image.shape)
    return None


def _in_channels(model: nn.Module) -> int | None:
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return conv.in_channels if conv is not None else None


def _input_size(classifier) -> int | None:
    size = getattr(classifier, "input_size", None)
    if isinstance(size, (list, tuple)):
        size = size[-1]
    return int(size) if isinstance(size, int) or (isinstance(size, float) and size.is_integer()) else None


def model_takes_images(dataset, classifier, device: torch.device | str = "cpu") -> None:
    """One forward pass of a blank image of the dataset's shape; a failure is a :class:`ConfigError` naming the
    shapes and the keys that fix them (``dataset.image_size``, ``dataset.channels``, ``model.in_chans``)."""
    shape = first_shape(dataset)
    if shape is None:
        return  # nothing readable here: the run records the images as skipped
    model = classifier.model
    dname, mname = getattr(dataset, "name", "?"), getattr(classifier, "name", "?")
    hints = []
    chans = _in_channels(model)
    if chans is not None and chans != shape[0]:
        hints.append(f"the model takes {chans}-channel images: dataset.channels={chans} (or model.in_chans="
                     f"{shape[0]})")
    size = _input_size(classifier)
    if size is not None and tuple(shape[1:]) != (size, size):
        hints.append(f"the model was made for {size}x{size}: dataset.image_size={size}, or its own transform with "
                     f"dataset.preprocess=timm dataset.timm_model=<its timm name>")
    x = torch.zeros((1, *shape), device=device)
    was_training = model.training
    model.eval()  # batch norm must not learn from the blank image
    try:
        with torch.no_grad():
            out = model(x)
    except Exception as err:  # noqa: BLE001 - any failure here means these images do not fit this model
        fix = "; ".join(hints) or "make dataset.image_size / dataset.channels match what the model takes"
        raise ConfigError(f"model={mname} cannot classify the images of dataset={dname} (shape "
                          f"{'x'.join(map(str, shape))}): {type(err).__name__}: {str(err)[:200]}. Fix: {fix}") from err
    finally:
        model.train(was_training)
    if not (isinstance(out, torch.Tensor) and out.dim() == 2 and out.shape[0] == 1):
        raise ConfigError(f"model={mname} returned {type(out).__name__} of shape "
                          f"{tuple(getattr(out, 'shape', ()))} on one image of dataset={dname}: a classifier must "
                          f"return logits [batch, classes]")

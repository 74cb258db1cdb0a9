"""PreActResNet-18 for 32x32 inputs (He, Zhang, Ren and Sun, "Identity Mappings in Deep Residual Networks",
ECCV 2016), the CIFAR variant the SIG authors retrain in ROAR: a 3x3 stem of 64 channels, four stages of two
pre-activation basic blocks (64, 128, 256, 512 channels; stride 2 from the second stage), 4x4 average pooling and a
linear head (the widely copied CIFAR layout: no BN-ReLU after the last block). A block computes
y = x' + conv(relu(bn(conv(relu(bn(x)))))), where x' is x or, when the shape changes, a strided 1x1 convolution of
relu(bn(x)).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PreActBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.shortcut = (nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False))
                         if stride != 1 or in_planes != planes else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet(nn.Module):
    def __init__(self, num_blocks=(2, 2, 2, 2), num_classes: int = 10, in_chans: int = 3, width: int = 64):
        super().__init__()
        self.in_planes = width
        self.conv1 = nn.Conv2d(in_chans, width, 3, stride=1, padding=1, bias=False)
        layers = []
        for i, n in enumerate(num_blocks):
            planes, stride = width * 2 ** i, 1 if i == 0 else 2
            blocks = []
            for s in [stride] + [1] * (n - 1):
                blocks.append(PreActBlock(self.in_planes, planes, s))
                self.in_planes = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.linear = nn.Linear(self.in_planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.adaptive_avg_pool2d(out, 1) if out.shape[-1] != 4 else F.avg_pool2d(out, 4)
        return self.linear(out.flatten(1))


def preact_resnet18(num_classes: int = 10, in_chans: int = 3, width: int = 64) -> PreActResNet:
    """PreActResNet-18 (11,171,146 parameters at width 64 with 10 classes)."""
    return PreActResNet((2, 2, 2, 2), num_classes=num_classes, in_chans=in_chans, width=width)


__all__ = ["PreActBlock", "PreActResNet", "preact_resnet18"]

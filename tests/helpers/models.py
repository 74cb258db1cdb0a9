"""Tiny models and inputs shared by the tests: analytic classifiers whose gradients are known or smooth, and a
small diffusers VAE. Built in memory from fixed seeds; nothing is downloaded."""
import torch
import torch.nn as nn

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class SmoothNet(nn.Module):
    """A smooth analytic classifier: conv -> tanh -> pooled linear head (float64-friendly)."""

    def __init__(self, channels=3, classes=5, seed=0, width=8, scale=0.05):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(channels, width, 3, padding=1)
        self.head = nn.Linear(width * 4, classes)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * scale)

    def forward(self, x):
        h = torch.tanh(self.conv(x))
        h = nn.functional.adaptive_avg_pool2d(h, 2).flatten(1)
        return self.head(h)


def TanhNet(classes=5, scale=0.3, seed=0):
    """The sequential methods' test model: SmoothNet with 6 features and larger weights (more curvature)."""
    return SmoothNet(classes=classes, seed=seed, width=6, scale=scale)


def normalized_images(n=3, size=8, seed=1):
    """n random [0,1] images mapped through the ImageNet normalisation."""
    g = torch.Generator().manual_seed(seed)
    pix = torch.rand(n, 3, size, size, generator=g)
    return (pix - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


class LinearNet(nn.Module):
    """logits = W vec(x): every gradient is known in closed form."""

    def __init__(self, shape=(3, 8, 8), classes=4, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.lin = nn.Linear(int(torch.tensor(shape).prod()), classes, bias=False)
        with torch.no_grad():
            self.lin.weight.copy_(torch.randn(self.lin.weight.shape, generator=g))

    def forward(self, x):
        return self.lin(x.flatten(1))


def tiny_kl(channels: int = 3, seed: int = 0):
    """A small random diffusers AutoencoderKL (8/16 channels, 4 latent channels, down-sampling 4)."""
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(in_channels=channels, out_channels=channels, down_block_types=("DownEncoderBlock2D",) * 2,
                         up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1,
                         latent_channels=4, norm_num_groups=8).eval()


def tiny_vit(channels: int = 3, classes: int = 5, size: int = 16, seed: int = 0):
    """A real timm Vision Transformer, tiny (4x4 patches, one block of width 16, 2 heads; random weights, eval
    mode). ``dynamic_img_size``: any multiple of 4 as the image height/width (the position embedding is
    resampled)."""
    import timm

    torch.manual_seed(seed)
    return timm.create_model("test_vit", pretrained=False, img_size=size, patch_size=4, in_chans=channels,
                             num_classes=classes, embed_dim=16, depth=1, num_heads=2, dynamic_img_size=True).eval()

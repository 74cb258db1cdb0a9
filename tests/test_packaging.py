"""The library installs and runs on its core dependencies alone; the harness is not an installed package."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BLOCK = """
import sys
for name in ("diffusers", "datasets", "quantus", "hydra", "omegaconf", "pandas", "wandb", "matplotlib"):
    sys.modules[name] = None  # importing it raises ImportError
import torch, attribution
x, y = torch.rand(2, 3, 8, 8), torch.tensor([0, 1])
model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 3))
for name in ("ig", "guided_ig", "sig", "blur_ig"):
    attribution.build_method(name, n_steps=4)(model, x, y)
print(sorted(attribution.build_metric("diffid")(model, x, torch.rand_like(x), y)))
"""


def test_library_runs_without_the_harness_dependencies(tmp_path):
    out = subprocess.run([sys.executable, "-c", BLOCK], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "diffid" in out.stdout


def test_pyproject_installs_only_the_library():
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = {d.split(">")[0].split("=")[0].split("<")[0] for d in meta["project"]["dependencies"]}
    assert deps == {"torch", "torchvision", "timm", "numpy", "scipy"}
    assert meta["tool"]["setuptools"]["packages"]["find"]["include"] == ["attribution*"]

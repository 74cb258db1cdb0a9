"""Adding a method is one module plus one YAML: in a copy of the tree, a throw-away method written that way shows
up in the registry, the demo's sweep, the tables' row order and labels, and the contract tests, with no other file
touched."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

MODULE = '''"""A throw-away method (the test that adding a method is one module plus one YAML): scaled IG."""
import torch

from ..engine.integrate import integrate_path
from ..errors import check_real
from .base import Attribution, PathMethod, register_method
from .ig import linear_points


@register_method("zz_half_ig", display="HalfIG", order=50)
class HalfIG(PathMethod):
    name = "zz_half_ig"

    def __init__(self, n_steps: int = 20, scale: float = 1.0, **kwargs):
        super().__init__(n_steps=n_steps, **kwargs)
        self.scale = check_real("scale", scale, 0, low_open=True)

    def _attribute(self, model, x, target):
        b = self.baseline_for(x)
        alphas = torch.linspace(0, 1, self.n_steps, dtype=torch.float64)
        attr, f0, f1 = integrate_path(model, lambda s, e: linear_points(b, x, alphas[s:e]), self.n_steps, target,
                                      self.evaluator, x.shape[0], row_shape=x.shape[1:], integration=self.integration)
        return Attribution(attr * self.scale, f0, f1)

    def path_cost(self, height=256, width=256):
        return {"fb": self.n_steps - 1, "f": 1}
'''

YAML = """name: zz_half_ig
n_steps: 20
scale: 1.0
baseline: black
n_samples: 16
seed: 0
integration: path
objective: prob
max_batch: null
autocast: false
"""

CHECK = """
import attribution
from benchmarks.demo import plan_jobs
from benchmarks.report.names import display_method, method_order

assert "zz_half_ig" in attribution.available_methods()
jobs = plan_jobs({"photos": [], "mnist": []}, attribution.available_methods(), {"photos": None, "mnist": "mnist_kl"})
assert ("photos", "zz_half_ig") in jobs and ("mnist", "zz_half_ig") in jobs, jobs
assert display_method("zz_half_ig") == "HalfIG"
order = method_order(["random", "zz_half_ig", "ma_gig", "ig"])
assert order == ["ig", "ma_gig", "zz_half_ig", "random"], order
print("ok")
"""


@pytest.mark.slow
def test_a_method_added_as_one_module_and_one_yaml_is_swept_tabulated_and_tested(tmp_path):
    for part in ("attribution", "benchmarks", "configs", "tests/contracts", "tests/helpers"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("tests/conftest.py", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "attribution/methods/zz_half_ig.py").write_text(MODULE)
    (tmp_path / "configs/method/zz_half_ig.yaml").write_text(YAML)
    env_run = dict(cwd=tmp_path, capture_output=True, text=True, timeout=600)
    out = subprocess.run([sys.executable, "-c", "import attribution; print(attribution.__file__)"], **env_run)
    assert str(tmp_path) in out.stdout, "the copy's library must be the one imported: " + out.stdout + out.stderr
    out = subprocess.run([sys.executable, "-c", CHECK], **env_run)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-3000:]
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/contracts",
                          "-k", "zz_half_ig and not new_method"], **env_run)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", out.stdout).group(1))
    assert passed >= 6, out.stdout[-2000:]  # every method contract ran on it

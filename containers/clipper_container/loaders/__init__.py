"""Container-side model loaders. A manifest's ``"loader"`` names one as ``module:function``; each takes the model
directory and returns a :class:`~clipper_container.loading.Predictor`.

* :mod:`clipper_container.loaders.python_closure`: a Python function pickled with cloudpickle (``func.pkl``).
"""

from __future__ import annotations

__all__: list[str] = []

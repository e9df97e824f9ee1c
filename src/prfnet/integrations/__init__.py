"""Adapters for the ecosystem: a torchmetrics ``Metric``, a pyiqa-compatible metric and a differentiable loss.

Import the submodule you need (``prfnet.integrations.torchmetrics``, ``prfnet.integrations.pyiqa``,
``prfnet.integrations.loss``); this package imports none of them, so neither torchmetrics nor pyiqa is loaded
until used. pyiqa is never required: :func:`prfnet.integrations.pyiqa.register_pyiqa` registers PRFNet with
it only when it is installed (``pip install prfnet[pyiqa]``).
"""

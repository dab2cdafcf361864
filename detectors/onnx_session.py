"""The onnxruntime session every model here runs in: CPU only, a fixed number of threads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["cpu_session"]


def cpu_session(path: Path, *, threads: int = 1) -> Any:
    """An ``onnxruntime.InferenceSession`` for the model at ``path`` with ``threads`` threads
    inside an operator and none across operators (a recogniser's parallelism is its callers').

    onnxruntime is imported here, not at module level: importing :mod:`detectors` stays cheap.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

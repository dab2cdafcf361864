"""Fine-tuning starts from the shipped models: unfolding their BatchNorms must keep the function."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")


def test_shipped_reader_and_refiner_load_into_torch_unchanged() -> None:
    import onnxruntime

    from detectors.recognizer import MODELS_DIR
    from detectors.training.nets import CornerRefiner, StripReader
    from detectors.training.onnx_init import load_folded

    torch.manual_seed(0)
    for network, name, shape in (
        (StripReader, "reader", (4, 1, 32, 192)),
        (CornerRefiner, "refiner", (4, 1, 64, 128)),
    ):
        model = network()
        batch = torch.rand(*shape)
        load_folded(model, MODELS_DIR / f"{name}.onnx", batch)
        session = onnxruntime.InferenceSession(
            str(MODELS_DIR / f"{name}.onnx"), providers=["CPUExecutionProvider"]
        )
        expected = session.run(None, {session.get_inputs()[0].name: batch.numpy()})[0]
        model.eval()
        with torch.no_grad():
            assert np.allclose(model(batch).numpy(), expected, atol=1e-4), name
        model.train()  # batch statistics match the measured ones, so training starts from the same function
        with torch.no_grad():
            assert np.allclose(model(batch).numpy(), expected, atol=1e-3), name

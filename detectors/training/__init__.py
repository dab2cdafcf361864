"""Reproducible training of the plate detector and reader (needs the ``train`` extra: torch).

Data comes from ``detectors.synthetic`` with fixed seeds; the scripts export ONNX
weights and the confidence calibration into ``detectors/models``. Run as:

    nice -n 10 .venv/bin/python -m detectors.training.train_reader
    nice -n 10 .venv/bin/python -m detectors.training.train_detector
    nice -n 10 .venv/bin/python -m detectors.training.calibrate
"""

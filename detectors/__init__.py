"""Licence-plate detection and reading for Vietnamese plates (pure image processing).

Modules: ``plate_format`` (grammar, canonical/display forms, provinces),
``synthetic`` (rendered plates and scenes), ``recognizer`` (``PlateRecognizer``),
``jpeg`` (decode/encode). Nothing is imported here so ``import detectors`` stays
cheap; import the module you need.
"""

"""`python -m satx.export`: an artifact converted for ONNX Runtime, OpenVINO and LiteRT.

The command line only; the work is `satx.artifact.conversion.export_runtimes`, which train and
tune also call for `--export_runtimes`.
"""

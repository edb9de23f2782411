"""The scoring core: one ``Predictor`` for the HTTP service, batch files and Spark.

``columns`` coerces raw cells the way training saw them, ``problems`` types what is wrong with
an input, ``backends`` runs a model (scikit-learn or the compiled ONNX twin), ``predictor``
checks columns against the signature and predicts, ``results`` names the output columns.
"""

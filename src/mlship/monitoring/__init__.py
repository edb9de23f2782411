"""Watching a model after training: a batch of rows against the model dir's reference profile.

``drift`` measures each feature's and the predictions' move (PSI, chi-square); ``report`` writes
the JSON summary and the HTML page; ``job`` is ``mlship monitor``: load, compare, log to MLflow.
"""

"""Batch scoring of files: readers, writers that commit by rename, the local job and Spark.

``options`` is the one description of a batch job (shared by the CLI, the local engine and
Spark), ``frames`` scores one frame with the predictor core, ``reader`` streams input files
in record batches, ``writer`` stages output beside its destination, ``job`` runs it locally,
``spark`` runs the same per-frame code in ``mapInPandas``.
"""

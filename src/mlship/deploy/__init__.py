"""Deployable artifacts built from a saved model: the scoring image (and the VM bundle)."""

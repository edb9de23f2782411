"""Real platform clients: scripts run with a throwaway venv's python, and the harness the
tests share to run them (``harness``)."""

"""Training: read and check data, build the pipeline, fit, evaluate, compile, and the job itself."""

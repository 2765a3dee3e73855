"""An offline model of the GPU workers' autoscaling: replay a request-rate trace against a
fleet whose latency was measured on the real Dynamo (scripts/calibrate_latency.py), whose
new workers take environments/fit.py's cold start, and whose size follows scaling policies.
Pure Python and deterministic: a fluid model with no randomness. `make simulate` runs it."""

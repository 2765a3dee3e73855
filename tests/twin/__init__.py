"""The twin: a synthesized stack running locally with the real Dynamo (see runtime.py)."""

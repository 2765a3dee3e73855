"""Pull-request review of infrastructure changes: what changes, what it risks, what it costs (issue 16).

`python main.py review` synthesizes the working tree and a base, or reads a `terraform show -json`
plan, and writes one markdown section per environment (review/render.py)."""

"""Observability: Prometheus metrics (``metrics``) and structured logs (``logs``).

Neither module imports the web framework, so services (the predictor) and commands (the
worker) can record and log through them too.
"""

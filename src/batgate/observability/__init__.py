"""Observability: metrics, structured logs with request ids, readiness.

Process-wide pieces live here; the HTTP side (middleware, `/metrics`, `/readyz`)
is in :mod:`batgate.api.telemetry` and :mod:`batgate.api.probes`, and the SQL of
the database gauges in :mod:`batgate.store.gauges`.
"""

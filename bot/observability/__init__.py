"""Watching a running Troupe: Prometheus metrics, the health server, structured logs.

:mod:`bot.observability.metrics` holds the counters the engine and the adapters record
into, :mod:`bot.observability.health` serves ``/healthz`` and ``/metrics`` over HTTP, and
:mod:`bot.observability.logs` sets up logging with a per-turn id and secrets masked.
"""

"""Watching a running Troupe: Prometheus metrics, the health server, structured logs.

* :mod:`bot.observability.metrics`: :class:`Metrics`, the counters the engine and the
  adapters record into;
* :mod:`bot.observability.cost`: :class:`Prices`, the one estimate of what tokens cost (the
  metrics and ``/usage`` both use it);
* :mod:`bot.observability.health`: :class:`HealthServer`, ``/healthz`` and ``/metrics`` over
  HTTP;
* :mod:`bot.observability.delivery`: :class:`DeliveryMonitor`, whether a platform still takes
  what the bot sends (the delivery half of ``/healthz``);
* :mod:`bot.observability.logs`: :func:`configure_logging`, with a per-turn id and secrets
  masked.

It depends on no other part of Troupe but its settings.
"""

from bot.observability.cost import Prices, billed_tokens
from bot.observability.delivery import DeliveryMonitor, DeliveryMonitors
from bot.observability.health import HealthCheck, HealthServer
from bot.observability.logs import SecretMasker, configure_logging, current_turn_id, new_turn_id
from bot.observability.metrics import Metrics

__all__ = [
    "DeliveryMonitor",
    "DeliveryMonitors",
    "HealthCheck",
    "HealthServer",
    "Metrics",
    "Prices",
    "SecretMasker",
    "billed_tokens",
    "configure_logging",
    "current_turn_id",
    "new_turn_id",
]

"""Metrics: every recorder, read back through the Prometheus text format."""

from __future__ import annotations

import math

import pytest

from bot.observability.cost import Prices
from bot.observability.metrics import Metrics
from tests.observability.scrape import samples, value


def test_turns_in_flight_rise_and_fall_per_platform() -> None:
    metrics = Metrics()
    metrics.turn_started("discord")
    metrics.turn_started("discord")
    metrics.turn_started("telegram")
    metrics.turn_finished("discord", "ok", 1.0, 0.5)

    text = metrics.render()
    assert value(text, "troupe_turns_in_flight", platform="discord") == 1
    assert value(text, "troupe_turns_in_flight", platform="telegram") == 1


def test_finished_turns_are_counted_by_platform_and_status() -> None:
    metrics = Metrics()
    for status in ("ok", "ok", "error"):
        metrics.turn_started("discord")
        metrics.turn_finished("discord", status, 1.0, 0.5)
    metrics.turn_started("telegram")
    metrics.turn_finished("telegram", "ok", 1.0, 0.5)

    text = metrics.render()
    assert value(text, "troupe_turns_total", platform="discord", status="ok") == 2
    assert value(text, "troupe_turns_total", platform="discord", status="error") == 1
    assert value(text, "troupe_turns_total", platform="telegram", status="ok") == 1


def test_turn_latency_and_first_token_land_in_their_histograms() -> None:
    metrics = Metrics()
    metrics.turn_started("discord")
    metrics.turn_finished("discord", "ok", 3.0, 0.3)
    metrics.turn_started("discord")
    metrics.turn_finished("discord", "ok", 10.0, 1.5)

    text = metrics.render()
    assert value(text, "troupe_turn_seconds_count", platform="discord") == 2
    assert value(text, "troupe_turn_seconds_sum", platform="discord") == pytest.approx(13.0)
    assert value(text, "troupe_turn_seconds_bucket", platform="discord", le="4.0") == 1
    assert value(text, "troupe_turn_seconds_bucket", platform="discord", le="15.0") == 2
    assert value(text, "troupe_first_token_seconds_sum", platform="discord") == pytest.approx(1.8)
    assert value(text, "troupe_first_token_seconds_bucket", platform="discord", le="0.5") == 1
    assert value(text, "troupe_first_token_seconds_bucket", platform="discord", le="2.0") == 2


def test_a_turn_without_text_adds_no_first_token_sample() -> None:
    metrics = Metrics()
    metrics.turn_started("telegram")
    metrics.turn_finished("telegram", "error", 0.2, None)

    text = metrics.render()
    assert value(text, "troupe_turn_seconds_count", platform="telegram") == 1
    assert value(text, "troupe_first_token_seconds_count", platform="telegram") is None


def test_tokens_are_counted_in_and_out_and_priced() -> None:
    metrics = Metrics(prices=Prices(0.30, 1.20))
    metrics.tokens("discord", prompt=1000, completion=500, total=1500)
    metrics.tokens("discord", prompt=3000, completion=1500, total=4500)

    text = metrics.render()
    assert value(text, "troupe_tokens_total", platform="discord", direction="in") == 4000
    assert value(text, "troupe_tokens_total", platform="discord", direction="out") == 2000
    # 4000 x $0.30 / 1M + 2000 x $1.20 / 1M
    expected = 4000 * 0.30 / 1e6 + 2000 * 1.20 / 1e6
    assert value(text, "troupe_cost_usd_total", platform="discord") == pytest.approx(expected)


def test_usage_with_only_a_total_counts_it_as_input() -> None:
    metrics = Metrics(prices=Prices(2.0, 10.0))
    metrics.tokens("telegram", prompt=0, completion=0, total=221)
    metrics.tokens("telegram", prompt=100, completion=20, total=130)

    text = metrics.render()
    assert value(text, "troupe_tokens_total", platform="telegram", direction="in") == 331
    assert value(text, "troupe_tokens_total", platform="telegram", direction="out") == 20
    expected = (331 * 2.0 + 20 * 10.0) / 1e6
    assert value(text, "troupe_cost_usd_total", platform="telegram") == pytest.approx(expected)


def test_usage_totals_below_the_split_never_count_backwards() -> None:
    metrics = Metrics()
    metrics.tokens("discord", prompt=100, completion=50, total=0)

    text = metrics.render()
    assert value(text, "troupe_tokens_total", platform="discord", direction="in") == 100
    assert value(text, "troupe_tokens_total", platform="discord", direction="out") == 50


def test_api_errors_are_counted_by_code_and_kind() -> None:
    metrics = Metrics()
    metrics.api_error(1002, "RateLimited")
    metrics.api_error(1002, "RateLimited")
    metrics.api_error(None, "RequestTimeout")

    text = metrics.render()
    assert value(text, "troupe_api_errors_total", code="1002", kind="RateLimited") == 2
    assert value(text, "troupe_api_errors_total", code="none", kind="RequestTimeout") == 1


def test_sensitive_flags_are_counted_by_direction_and_type() -> None:
    metrics = Metrics()
    metrics.sensitive_flag("input", "PORNOGRAPHY")
    metrics.sensitive_flag("output", "PORNOGRAPHY")
    metrics.sensitive_flag("output", "PORNOGRAPHY")

    text = metrics.render()
    assert value(text, "troupe_sensitive_flags_total", direction="input", type="PORNOGRAPHY") == 1
    assert value(text, "troupe_sensitive_flags_total", direction="output", type="PORNOGRAPHY") == 2


def test_platform_waits_add_up_and_ignore_negative_durations() -> None:
    metrics = Metrics()
    metrics.platform_wait("discord", 1.25)
    metrics.platform_wait("discord", 0.5)
    metrics.platform_wait("discord", -3.0)  # a clock hiccup must not raise or subtract

    text = metrics.render()
    assert value(
        text, "troupe_platform_rate_limit_wait_seconds_total", platform="discord"
    ) == pytest.approx(1.75)


def test_queue_depth_is_the_latest_value() -> None:
    metrics = Metrics()
    metrics.queue_depth("telegram", 7)
    metrics.queue_depth("telegram", 3)
    metrics.queue_depth("discord", 0)

    text = metrics.render()
    assert value(text, "troupe_queue_depth", platform="telegram") == 3
    assert value(text, "troupe_queue_depth", platform="discord") == 0


def test_two_instances_share_nothing() -> None:
    first, second = Metrics(), Metrics()
    first.turn_started("discord")
    first.turn_finished("discord", "ok", 1.0, 0.1)

    assert first.registry is not second.registry
    assert value(first.render(), "troupe_turns_total", platform="discord", status="ok") == 1
    assert value(second.render(), "troupe_turns_total", platform="discord", status="ok") is None


def test_render_is_valid_prometheus_text_with_help_and_type() -> None:
    metrics = Metrics()
    metrics.turn_started("discord")
    metrics.turn_finished("discord", "ok", 2.0, 0.5)
    metrics.tokens("discord", 10, 5, 15)

    text = metrics.render().decode()
    assert "# TYPE troupe_turn_seconds histogram" in text
    assert "# TYPE troupe_turns_total counter" in text
    assert "# HELP troupe_cost_usd_total" in text
    assert all(math.isfinite(v) for v in samples(text).values())

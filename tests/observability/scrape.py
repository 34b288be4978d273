"""Reading metric values back out of Prometheus text, the way a scraper would."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: bytes | str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample in ``text``, keyed by sample name and label set."""
    if isinstance(text, bytes):
        text = text.decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: bytes | str, name: str, **labels: str) -> float | None:
    """The value of sample ``name`` with exactly ``labels``, or ``None`` if absent."""
    return samples(text).get((name, frozenset(labels.items())))

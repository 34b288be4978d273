"""Fixtures for the observability tests."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator, Mapping

import pytest

from bot.observability.logs import configure_logging
from bot.settings import Settings

#: ``configure(environ)`` sets up logging into a fresh buffer and returns the buffer.
Configure = Callable[[Mapping[str, str]], io.StringIO]


@pytest.fixture
def configure() -> Iterator[Configure]:
    """Call :func:`configure_logging` into a buffer; the root logger and the record factory
    are restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_factory = logging.getLogRecordFactory()

    def setup(environ: Mapping[str, str]) -> io.StringIO:
        stream = io.StringIO()
        configure_logging(Settings.from_environ(environ), stream=stream)
        return stream

    yield setup
    for handler in root.handlers:
        if handler not in saved_handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(saved_level)
    logging.setLogRecordFactory(saved_factory)

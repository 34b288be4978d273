"""``python -m bot`` is the same as the ``troupe`` command."""

from bot.cli import main

raise SystemExit(main())

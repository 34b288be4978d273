"""Troupe: AI characters on Discord and Telegram, powered by MiniMax M2-her."""

__version__ = "0.1.0"

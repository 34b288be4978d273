"""Tokens used and what they cost: the caller's, the chat's and the server's."""

from __future__ import annotations

from bot.conversation.commands.caller import Caller
from bot.conversation.commands.words import count
from bot.conversation.manager import ConversationManager, UsageReport


def usage_line(report: UsageReport) -> str:
    """``1,234 tokens in 5 replies (≈ $0.0012)``."""
    replies = count(report.calls, "reply", "replies")
    return f"{count(report.total_tokens, 'token')} in {replies} (≈ ${report.cost_usd:.4f})"


async def describe_usage(
    manager: ConversationManager, caller: Caller, *, chat_noun: str, server_id: str | None = None
) -> str:
    """One line for the caller, one for this chat (a platform calls it a channel, a chat, a
    conversation: ``chat_noun``) and, inside a server, one for the server."""
    platform = caller.platform
    lines = [
        "You: " + usage_line(await manager.usage(platform, author_id=caller.user_id)),
        f"This {chat_noun}: "
        + usage_line(await manager.usage(platform, chat_id=caller.key.chat_id)),
    ]
    if server_id is not None:
        server = await manager.usage(platform, server_id=server_id)
        lines.append("This server: " + usage_line(server))
    return "\n".join(lines)

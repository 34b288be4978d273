"""Tokens used and what they cost: the caller's, the chat's and the server's."""

from __future__ import annotations

from bot.conversation.commands.caller import Caller
from bot.conversation.commands.words import count
from bot.conversation.manager import ConversationManager
from bot.conversation.users import UsageReport


def usage_line(report: UsageReport, calls: tuple[str, str] = ("reply", "replies")) -> str:
    """``1,234 tokens in 5 replies (≈ $0.0012)``; ``calls`` names one call and several."""
    made = count(report.calls, *calls)
    return f"{count(report.total_tokens, 'token')} in {made} (≈ ${report.cost_usd:.4f})"


async def describe_usage(
    manager: ConversationManager, caller: Caller, *, chat_noun: str, server_id: str | None = None
) -> str:
    """One line for the caller, one for this chat (a platform calls it a channel, a chat, a
    conversation: ``chat_noun``), the part of it spent by characters speaking first (if
    any) and, inside a server, one for the server; then, when the chat's memory cost
    anything, what of this chat's went to keeping its memory."""
    platform = caller.platform
    chat_id = caller.key.chat_id
    users = manager.users
    lines = [
        "You: " + usage_line(await users.usage(platform, author_id=caller.user_id)),
        f"This {chat_noun}: " + usage_line(await users.usage(platform, chat_id=chat_id)),
    ]
    nudges = await users.usage(platform, chat_id=chat_id, kind="nudge")
    if nudges.calls:
        spent = usage_line(nudges, ("nudge", "nudges"))
        lines.append(f"  of which characters speaking first: {spent}")
    if server_id is not None:
        server = await users.usage(platform, server_id=server_id)
        lines.append("This server: " + usage_line(server))
    memory = await users.usage(platform, chat_id=chat_id, kind="memory")
    if memory.calls:
        made = ("memory update", "memory updates")
        lines.append(f"Keeping this {chat_noun}'s memory: " + usage_line(memory, made))
    return "\n".join(lines)

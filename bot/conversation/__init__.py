"""The conversation layer: platform-neutral turns between people and characters.

A platform adapter turns each chat message into an :class:`Incoming` and hands it, with a
:class:`ReplySink` that shows the reply on its platform, to the one
:class:`ConversationManager` of the process. The manager stores the message, decides whether
(and which character) answers, and runs the turn in order with the conversation's other
turns; :attr:`ConversationManager.policies` (:class:`ChatPolicies`) holds each chat's rules
and what its admins set, :attr:`ConversationManager.users` (:class:`UserData`) personas,
usage and the moderation log, :attr:`ConversationManager.nudges` (the
:mod:`bot.conversation.nudges` scheduler) characters that speak first.

The chat commands every platform offers are the :mod:`bot.conversation.commands` subpackage.
Below this layer sit :mod:`bot.characters`, :mod:`bot.llm` and :mod:`bot.storage`; above it
the platforms, which import what they need from here.
"""

from bot.conversation.cache import TimedCache
from bot.conversation.incoming import ConversationKey, Incoming
from bot.conversation.keyed import KeyedLocks
from bot.conversation.manager import (
    INTERRUPTED,
    ConversationManager,
    GreetingChooser,
    ManagerSettings,
)
from bot.conversation.moderation import ModerationAction, ModerationPolicy
from bot.conversation.notices import UNDELIVERED_NOTICE, NoticeRetry
from bot.conversation.policies import ChatPolicies
from bot.conversation.policy import ChatPolicy, Limits, PolicyTree, Scope
from bot.conversation.recovery import SinkFactory
from bot.conversation.settings import ServerSettings
from bot.conversation.sink import DeliveryFailed, ReplySink
from bot.conversation.trigger import TriggerPolicy, TriggerSettings
from bot.conversation.turn import (
    UNEXPECTED,
    ModerationHook,
    ModerationReport,
    TurnOutcome,
    TurnStatus,
    tell,
)
from bot.conversation.users import UsageReport, UserData

__all__ = [
    "INTERRUPTED",
    "UNDELIVERED_NOTICE",
    "UNEXPECTED",
    "ChatPolicies",
    "ChatPolicy",
    "ConversationKey",
    "ConversationManager",
    "DeliveryFailed",
    "GreetingChooser",
    "Incoming",
    "KeyedLocks",
    "Limits",
    "ManagerSettings",
    "ModerationAction",
    "ModerationHook",
    "ModerationPolicy",
    "ModerationReport",
    "NoticeRetry",
    "PolicyTree",
    "ReplySink",
    "Scope",
    "ServerSettings",
    "SinkFactory",
    "TimedCache",
    "TriggerPolicy",
    "TriggerSettings",
    "TurnOutcome",
    "TurnStatus",
    "UsageReport",
    "UserData",
    "tell",
]

"""SQLModel tables and their request/response models, one module per domain.

Importing this package registers every table on `SQLModel.metadata` (Alembic reads it).
"""

from sqlmodel import SQLModel
{% if cookiecutter.ai_provider != "none" %}
from .ai import AIDailyUsage, AIUsage, Conversation, ConversationMessage
{%- endif %}
from .item import Item
{%- if cookiecutter.use_auth %}
from .user import RevokedToken, User
{%- endif %}

__all__ = [
{%- if cookiecutter.ai_provider != "none" %}
    "AIDailyUsage",
    "AIUsage",
    "Conversation",
    "ConversationMessage",
{%- endif %}
    "Item",
{%- if cookiecutter.use_auth %}
    "RevokedToken",
{%- endif %}
    "SQLModel",
{%- if cookiecutter.use_auth %}
    "User",
{%- endif %}
]

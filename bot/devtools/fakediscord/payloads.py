"""JSON payload factories: every object the fake sends is built here (one place, easy to test).

Shapes follow Discord's API (checked against discord/discord-api-spec and discord.py 2.7.1's parsers).
"""

from __future__ import annotations

from typing import Any

from .state import (
    JSON,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeMessage,
    FakeRole,
    FakeUser,
)

API_VERSION = 10


def user_payload(user: FakeUser) -> JSON:
    payload: JSON = {
        "id": user.id,
        "username": user.name,
        "discriminator": "0",
        "global_name": user.global_name,
        "avatar": None,
        "avatar_decoration_data": None,
        "banner": None,
        "accent_color": None,
        "public_flags": 0,
        "flags": 0,
        "primary_guild": None,
        "collectibles": None,
    }
    if user.bot:
        payload["bot"] = True
    return payload


def member_payload(member: FakeMember, *, with_user: bool = True, permissions: int | None = None) -> JSON:
    payload: JSON = {
        "roles": list(member.roles),
        "nick": member.nick,
        "avatar": None,
        "banner": None,
        "joined_at": member.joined_at,
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "pending": False,
        "flags": member.flags,
        "communication_disabled_until": None,
    }
    if with_user:
        payload["user"] = user_payload(member.user)
    if permissions is not None:
        payload["permissions"] = str(permissions)
    return payload


def role_payload(role: FakeRole) -> JSON:
    payload: JSON = {
        "id": role.id,
        "name": role.name,
        "color": role.color,
        "colors": {"primary_color": role.color, "secondary_color": None, "tertiary_color": None},
        "hoist": role.hoist,
        "icon": None,
        "unicode_emoji": None,
        "position": role.position,
        "permissions": str(role.permissions),
        "managed": role.managed,
        "mentionable": role.mentionable,
        "flags": 0,
    }
    if role.tags is not None:
        payload["tags"] = dict(role.tags)
    return payload


def channel_payload(
    channel: FakeChannel,
    *,
    recipient: FakeUser | None = None,
    permissions: int | None = None,
    include_guild_id: bool = True,
) -> JSON:
    if channel.is_dm:
        payload: JSON = {
            "id": channel.id,
            "type": 1,
            "last_message_id": None,
            "flags": 0,
            "recipients": [user_payload(recipient)] if recipient is not None else [],
        }
    else:
        payload = {
            "id": channel.id,
            "type": channel.type,
            "name": channel.name,
            "position": channel.position,
            "topic": channel.topic,
            "nsfw": channel.nsfw,
            "parent_id": None,
            "permission_overwrites": [o.to_payload() for o in channel.permission_overwrites],
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }
        if include_guild_id and channel.guild_id is not None:
            payload["guild_id"] = channel.guild_id
    if permissions is not None:
        payload["permissions"] = str(permissions)
    return payload


def guild_create_payload(guild: FakeGuild) -> JSON:
    return {
        "id": guild.id,
        "name": guild.name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": guild.owner_id,
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 1,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
        "premium_tier": guild.premium_tier,
        "premium_subscription_count": 0,
        "preferred_locale": guild.locale,
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "safety_alerts_channel_id": None,
        "max_members": 500000,
        "max_video_channel_users": 25,
        "vanity_url_code": None,
        "application_id": None,
        "features": [],
        "roles": [role_payload(role) for role in guild.roles.values()],
        "emojis": [],
        "stickers": [],
        "unavailable": False,
        "large": False,
        "lazy": True,
        "member_count": len(guild.members),
        "joined_at": guild.joined_at,
        "channels": [channel_payload(c, include_guild_id=False) for c in guild.channels.values()],
        "threads": [],
        "members": [member_payload(m) for m in guild.members.values()],
        "voice_states": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
        "premium_progress_bar_enabled": False,
    }


def ready_payload(
    *,
    bot_user: FakeUser,
    session_id: str,
    resume_gateway_url: str,
    guild_ids: list[str],
    shard: list[int],
    application_id: str,
) -> JSON:
    return {
        "v": API_VERSION,
        "user": {**user_payload(bot_user), "verified": True, "mfa_enabled": False, "email": None},
        "guilds": [{"id": gid, "unavailable": True} for gid in guild_ids],
        "session_id": session_id,
        "session_type": "normal",
        "resume_gateway_url": resume_gateway_url,
        "shard": shard,
        "application": {"id": application_id, "flags": 0},
        "private_channels": [],
        "relationships": [],
        "presences": [],
        "geo_ordered_rtc_regions": [],
        "guild_join_requests": [],
        "user_settings": {},
        "_trace": ["fakediscord"],
    }


def application_payload(*, application_id: str, bot_user: FakeUser, owner: FakeUser) -> JSON:
    return {
        "id": application_id,
        "name": bot_user.name,
        "icon": None,
        "description": "Fake application",
        "summary": "",
        "type": None,
        "bot_public": True,
        "bot_require_code_grant": False,
        "verify_key": "0" * 64,
        "flags": 0,
        "flags_new": "0",
        "owner": user_payload(owner),
        "team": None,
        "bot": user_payload(bot_user),
        "rpc_origins": [],
        "interactions_endpoint_url": None,
        "role_connections_verification_url": None,
        "tags": [],
        "integration_types_config": {"0": {}},
        "approximate_guild_count": 1,
        "approximate_user_install_count": 0,
        "approximate_user_authorization_count": 0,
        "explicit_content_filter": 0,
        "eligible_oauth2_scopes": ["applications.commands", "bot"],
        "redirect_uris": [],
        "event_webhooks_status": 1,
    }


def emoji_payload(key: str) -> JSON:
    """``"🛑"`` -> unicode emoji; ``"name:id"`` (what discord.py puts in the URL) -> custom emoji."""
    name, sep, emoji_id = key.rpartition(":")
    if sep and emoji_id.isdigit():
        animated = name.startswith("a:")
        return {"id": emoji_id, "name": name.removeprefix("a:"), "animated": animated}
    return {"id": None, "name": key}


def emoji_key(raw: str) -> str:
    """Normalise a URL emoji ("name:id", "a:name:id", "<:name:id>", unicode) to the fake's key."""
    raw = raw.strip()
    if raw.startswith("<") and raw.endswith(">"):
        raw = raw[1:-1]
    name, sep, emoji_id = raw.rpartition(":")
    if sep and emoji_id.isdigit():
        return f"{name.removeprefix('a:').lstrip(':')}:{emoji_id}"
    return raw


def reactions_payload(message: FakeMessage, me_id: str) -> list[JSON]:
    out: list[JSON] = []
    for key, users in message.reactions.items():
        if not users:
            continue
        out.append(
            {
                "emoji": emoji_payload(key),
                "count": len(users),
                "count_details": {"burst": 0, "normal": len(users)},
                "burst_colors": [],
                "me": me_id in users,
                "me_burst": False,
                "burst_count": 0,
            }
        )
    return out


def message_payload(
    message: FakeMessage,
    *,
    author: FakeUser,
    bot_user_id: str,
    mentions: list[FakeUser],
    mention_roles: list[str],
    interaction_metadata: JSON | None = None,
    referenced_message: JSON | None = None,
    blank_content: bool = False,
) -> JSON:
    """A message object as REST returns it (gateway events add ``guild_id``/``member``)."""
    payload: JSON = {
        "id": message.id,
        "type": message.type,
        "channel_id": message.channel_id,
        "content": "" if blank_content else message.content,
        "author": user_payload(author),
        "attachments": [] if blank_content else [a.to_payload() for a in message.attachments],
        "embeds": [] if blank_content else [dict(e) for e in message.embeds],
        "components": [] if blank_content else [dict(c) for c in message.components],
        "mentions": [user_payload(u) for u in mentions],
        "mention_roles": list(mention_roles),
        "mention_everyone": "everyone" in message.pinged,
        "pinned": False,
        "tts": message.tts,
        "timestamp": message.timestamp,
        "edited_timestamp": message.edited_timestamp,
        "flags": message.flags,
    }
    if message.reactions:
        payload["reactions"] = reactions_payload(message, bot_user_id)
    if message.webhook_id is not None:
        payload["webhook_id"] = message.webhook_id
        payload["application_id"] = message.webhook_id
    if interaction_metadata is not None:
        payload["interaction_metadata"] = interaction_metadata
    if message.message_reference is not None:
        payload["message_reference"] = dict(message.message_reference)
        payload["referenced_message"] = referenced_message
    if message.poll is not None and not blank_content:
        payload["poll"] = message.poll
    return payload


def command_echo(definition: JSON, *, command_id: str, application_id: str, version: str, guild_id: str | None) -> JSON:
    """What Discord answers for one command of a bulk overwrite (ApplicationCommandResponse)."""
    perms = definition.get("default_member_permissions")
    ctype = int(definition.get("type", 1))
    echo: JSON = {
        "id": command_id,
        "application_id": application_id,
        "version": version,
        "type": ctype,
        "name": definition["name"],
        "name_localizations": definition.get("name_localizations"),
        "description": definition.get("description", "") if ctype == 1 else "",
        "description_localizations": definition.get("description_localizations"),
        "default_member_permissions": None if perms is None else str(perms),
        "dm_permission": definition.get("dm_permission", True),
        "contexts": definition.get("contexts"),
        "integration_types": definition.get("integration_types") or [0],
        "nsfw": bool(definition.get("nsfw", False)),
    }
    if guild_id is not None:
        echo["guild_id"] = guild_id
    options = definition.get("options")
    if options:
        echo["options"] = [_option_echo(o) for o in options]
    return echo


def _option_echo(option: JSON) -> JSON:
    out: dict[str, Any] = {k: v for k, v in option.items() if v is not None}
    out.setdefault("description", "")
    if "options" in out:
        out["options"] = [_option_echo(o) for o in out["options"]]
    if out.get("required") is False:
        del out["required"]
    return out


def gateway_bot_payload(url: str, shards: int = 1) -> JSON:
    return {
        "url": url,
        "shards": shards,
        "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14400000, "max_concurrency": 1},
    }


def error_payload(code: int, message: str, errors: JSON | None = None) -> JSON:
    payload: JSON = {"message": message, "code": code}
    if errors:
        payload["errors"] = errors
    return payload

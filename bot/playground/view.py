"""What one member sees of the playground's channel, as JSON for the page.

Everything is read from the fake Discord's state: the messages the bot wrote (embeds, attachments,
buttons, reactions), the commands it registered, and the server's members, roles and channels. A
private ("ephemeral") answer is only in the view of the member whose interaction it answered, as in
Discord.
"""

from __future__ import annotations

from typing import Any

from bot.devtools.fakediscord import FakeDiscord, FakeMessage, FakeUser, InteractionType
from bot.devtools.fakediscord.validation import command_permitted

JSON = dict[str, Any]

#: The most recent messages the page shows.
HISTORY = 60
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
CHAT_INPUT = 1


def display_name(user: FakeUser) -> str:
    return user.global_name or user.name


def visible_to(fake: FakeDiscord, message: FakeMessage, viewer: FakeUser) -> bool:
    if message.deleted:
        return False
    if not message.ephemeral:
        return True
    interaction = fake.interactions.get(message.interaction_id or "")
    return interaction is not None and interaction.user.id == viewer.id


def _command_line(fake: FakeDiscord, message: FakeMessage) -> JSON | None:
    """ "Alice used /imagine" above a reply: who started the interaction and with what."""
    interaction = fake.interactions.get(message.interaction_id or "")
    if interaction is None:
        return None
    line: JSON = {"user": display_name(interaction.user)}
    origin = interaction.parent or interaction
    if origin.type == InteractionType.APPLICATION_COMMAND:
        parts = [str(origin.data.get("name", ""))]
        options = origin.data.get("options") or []
        while options and options[0].get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP):
            parts.append(str(options[0]["name"]))
            options = options[0].get("options") or []
        line["command"] = " ".join(parts)
    return line


def message_view(fake: FakeDiscord, message: FakeMessage, viewer: FakeUser) -> JSON:
    author = fake.users.get(message.author_id)
    return {
        "id": message.id,
        "author": {
            "id": message.author_id,
            "name": display_name(author) if author else "unknown",
            "bot": bool(author and author.bot),
        },
        "timestamp": message.timestamp,
        "edited": message.edited_timestamp is not None,
        "content": message.content,
        "embeds": message.embeds,
        "attachments": [
            {
                "id": a.id,
                "filename": a.filename,
                "url": a.url,
                "content_type": a.content_type,
                "width": a.width,
                "height": a.height,
            }
            for a in message.attachments
        ],
        "components": message.components,
        "reactions": [
            {"emoji": key, "count": len(users), "me": viewer.id in users}
            for key, users in message.reactions.items()
            if users
        ],
        "ephemeral": message.ephemeral,
        "loading": message.loading,
        "interaction": _command_line(fake, message),
    }


def _leaf_commands(command: JSON) -> list[JSON]:
    """A command with subcommands as the list of what can be run: "quota set", "quota show", …"""
    options = command.get("options") or []
    subs = [o for o in options if o.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP)]
    if not subs:
        return [{"name": command["name"], "description": command.get("description", ""), "options": options}]
    leaves: list[JSON] = []
    for sub in subs:
        for leaf in _leaf_commands(sub):
            leaves.append({**leaf, "name": f"{command['name']} {leaf['name']}"})
    return leaves


def _strip(option: JSON) -> JSON:
    keep = ("name", "description", "type", "required", "choices", "min_value", "max_value", "min_length", "max_length")
    return {key: option[key] for key in keep if key in option}


def commands_for(fake: FakeDiscord, viewer: FakeUser) -> list[JSON]:
    """The slash commands this member may run in the channel, as Discord's client would list them."""
    perms = fake.permissions_of(viewer, fake.channel)
    definitions = fake.commands_guild.get(fake.guild.id, []) + fake.commands_global
    out: list[JSON] = []
    for command in definitions:
        if command.get("type", CHAT_INPUT) != CHAT_INPUT or not command_permitted(command, perms):
            continue
        for leaf in _leaf_commands(command):
            out.append({**leaf, "options": [_strip(o) for o in leaf["options"]]})
    return sorted(out, key=lambda c: (c["name"] != "imagine", c["name"]))


def world_view(fake: FakeDiscord, viewer: FakeUser, members: list[JSON]) -> JSON:
    """Everything the page shows for ``viewer``."""
    channel = fake.channel
    messages = [m for m in fake.find_messages(channel=channel) if visible_to(fake, m, viewer)]
    guild = fake.guild
    return {
        "server": guild.name,
        "channel": {"id": channel.id, "name": channel.name},
        "me": viewer.id,
        "members": members,
        "bot": {"id": fake.bot_user.id, "name": display_name(fake.bot_user)},
        "commands": commands_for(fake, viewer),
        "users": [{"id": m.user.id, "name": display_name(m.user)} for m in guild.members.values() if not m.user.bot],
        "roles": [{"id": r.id, "name": r.name} for r in guild.roles.values() if r.id != guild.id and not r.managed],
        "channels": [{"id": c.id, "name": c.name} for c in guild.channels.values() if c.type == 0],
        "messages": [message_view(fake, m, viewer) for m in messages[-HISTORY:]],
    }

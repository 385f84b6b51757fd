"""The link that adds the bot to a server with the scopes and permissions it needs, and nothing more."""

from __future__ import annotations

import discord

SCOPES = ("bot", "applications.commands")

REQUIRED_PERMISSIONS = discord.Permissions(
    view_channel=True,  # see the channel a command is used in
    send_messages=True,  # post a result whose reply was deleted
    embed_links=True,  # status and result embeds
    attach_files=True,  # the images themselves
    read_message_history=True,  # find and edit its replies, read the message a menu command is used on
    add_reactions=True,  # the ❌ cancel control under each reply
    manage_messages=True,  # remove other members' ❌ reactions, which cancel nothing
)


def invite_url(client_id: int) -> str:
    """``https://discord.com/oauth2/authorize?client_id=…&scope=bot+applications.commands&permissions=…``."""
    if client_id <= 0:
        raise ValueError("client_id must be the application's positive numeric id")
    return discord.utils.oauth_url(client_id, permissions=REQUIRED_PERMISSIONS, scopes=SCOPES)

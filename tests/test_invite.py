"""The invite link: both scopes, exactly the permissions the bot uses."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import discord
import pytest

from bot.invite import REQUIRED_PERMISSIONS, invite_url


def test_required_permissions() -> None:
    names = (
        "view_channel",
        "send_messages",
        "embed_links",
        "attach_files",
        "read_message_history",
        "add_reactions",
        "manage_messages",
    )
    assert all(getattr(REQUIRED_PERMISSIONS, name) for name in names)
    assert REQUIRED_PERMISSIONS.value.bit_count() == len(names)  # and nothing else


def test_invite_url() -> None:
    url = invite_url(1234567890123456789)
    assert url == (
        "https://discord.com/oauth2/authorize?client_id=1234567890123456789"
        f"&scope=bot+applications.commands&permissions={REQUIRED_PERMISSIONS.value}"
    )
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "discord.com", "/oauth2/authorize")
    assert query == {
        "client_id": ["1234567890123456789"],
        "scope": ["bot applications.commands"],
        "permissions": [str(REQUIRED_PERMISSIONS.value)],
    }
    assert discord.Permissions(int(query["permissions"][0])) == REQUIRED_PERMISSIONS


@pytest.mark.parametrize("client_id", [0, -5])
def test_invalid_client_id(client_id: int) -> None:
    with pytest.raises(ValueError, match="client_id"):
        invite_url(client_id)

"""Quota commands: ``/quota set|show|reset`` for admins, ``/usage`` for everyone."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import quota
from bot.models import AllowanceSource
from cogs._render import CONTROLS_TEXT

if TYPE_CHECKING:
    from bot.app import ImagineBot

Interaction = discord.Interaction["ImagineBot"]

FIELD_LABELS = {
    "user_daily": "Images per member per day",
    "guild_daily": "Images per server per day",
    "max_concurrent": "Images in progress per member",
    "weight_4k": "A 4K image counts as",
}


GUILD_ONLY = "This command works only in a server, not in direct messages."


def _limit(value: int | None) -> str:
    return "no limit" if value is None else str(value)


class Quota(commands.Cog):
    quota = app_commands.Group(
        name="quota",
        description="Limit how many images members and the server can make",
        default_permissions=discord.Permissions(manage_guild=True),
        guild_only=True,
    )

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    async def _is_manager(self, interaction: Interaction) -> bool:
        """Discord's permission hint can be overridden by server settings, so check again here."""
        if interaction.guild_id is None:
            await interaction.response.send_message(GUILD_ONLY, ephemeral=True)
            return False
        if interaction.permissions.manage_guild:
            return True
        await interaction.response.send_message(
            "Only members with the Manage Server permission can change or view quota settings.", ephemeral=True
        )
        return False

    @quota.command(name="set", description="Change limits; options left out stay as they are, 0 removes a limit")
    @app_commands.describe(
        user_daily="Images per member per UTC day, unless a role or member limit applies (0 = no limit)",
        guild_daily="Images the whole server may make per UTC day (0 = no limit)",
        max_concurrent="Images each member may have in progress at once (0 = no limit)",
        weight_4k="How many images one 4K image counts as (default 2)",
    )
    async def quota_set(
        self,
        interaction: Interaction,
        user_daily: app_commands.Range[int, 0, 100_000] | None = None,
        guild_daily: app_commands.Range[int, 0, 1_000_000] | None = None,
        max_concurrent: app_commands.Range[int, 0, 1000] | None = None,
        weight_4k: app_commands.Range[int, 1, 100] | None = None,
    ) -> None:
        if not await self._is_manager(interaction):
            return
        assert interaction.guild_id is not None
        given = {"user_daily": user_daily, "guild_daily": guild_daily, "max_concurrent": max_concurrent}
        changes: dict[str, int | None] = {k: (v or None) for k, v in given.items() if v is not None}
        if weight_4k is not None:
            changes["weight_4k"] = weight_4k
        if not changes:
            await interaction.response.send_message(
                "Nothing changed: give at least one option. To remove a limit, set it to 0.", ephemeral=True
            )
            return
        settings = await self.bot.store.set_quota(
            interaction.guild_id, changes, user_id=interaction.user.id, now=self.bot.clock()
        )
        lines = [f"**{FIELD_LABELS[k]}**: {_limit(getattr(settings, k))}" for k in changes]
        await interaction.response.send_message("Quota updated.\n" + "\n".join(lines), ephemeral=True)

    @quota.command(name="show", description="Show the limits, today's use and who changed what")
    async def quota_show(self, interaction: Interaction) -> None:
        if not await self._is_manager(interaction):
            return
        assert interaction.guild_id is not None
        now = self.bot.clock()
        settings = await self.bot.store.get_quota(interaction.guild_id)
        usage = await self.bot.store.usage(interaction.guild_id, interaction.user.id, day=quota.utc_day(now))
        embed = discord.Embed(title="Image quota", colour=discord.Colour.blurple())
        for name in ("user_daily", "guild_daily", "max_concurrent"):
            embed.add_field(name=FIELD_LABELS[name], value=_limit(getattr(settings, name)))
        weight = quota.effective_4k_weight(settings, self.bot.settings.default_4k_weight)
        embed.add_field(name=FIELD_LABELS["weight_4k"], value=f"{weight} images")
        used = f"{usage.guild_used}" + (f" of {settings.guild_daily}" if settings.guild_daily else "")
        reset = int(quota.next_reset(now))
        embed.add_field(name="Used today (server)", value=f"{used} · resets <t:{reset}:R>", inline=False)
        changes = await self.bot.store.quota_changes(interaction.guild_id, limit=8)
        if changes:
            history = []
            for change in changes:
                if change.field.startswith("reset:"):
                    target = change.field.removeprefix("reset:")
                    whom = "the whole server" if target == "server" else f"<@{target}>"
                    what = f"reset today's use of {whom}"
                else:
                    what = f"{FIELD_LABELS.get(change.field, change.field)}: {_limit(change.old_value)} → {_limit(change.new_value)}"
                history.append(f"<t:{int(change.at)}:R> <@{change.user_id}> {what}")
            embed.add_field(name="Recent changes", value="\n".join(history)[:1024], inline=False)
        embed.set_footer(text=CONTROLS_TEXT["quota.footer"])
        await interaction.response.send_message(
            embed=embed, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )

    @quota.command(name="reset", description="Give back today's use of one member, or of the whole server")
    @app_commands.describe(member="Whose use to reset (leave out to reset the whole server)")
    async def quota_reset(self, interaction: Interaction, member: discord.Member | None = None) -> None:
        if not await self._is_manager(interaction):
            return
        assert interaction.guild_id is not None
        now = self.bot.clock()
        cleared = await self.bot.store.reset_usage(
            interaction.guild_id,
            user_id=member.id if member else None,
            day=quota.utc_day(now),
            by=interaction.user.id,
            now=now,
        )
        whom = member.mention if member else "the whole server"
        await interaction.response.send_message(
            f"Reset today's use of {whom} ({cleared} image(s) given back).",
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )

    @app_commands.command(name="usage", description="How many images you can still make today")
    @app_commands.guild_only()
    async def usage(self, interaction: Interaction) -> None:
        if interaction.guild_id is None:  # Discord should not send it from a DM, but do not rely on it
            await interaction.response.send_message(GUILD_ONLY, ephemeral=True)
            return
        now = self.bot.clock()
        store = self.bot.store
        member = await store.member_controls(interaction.guild_id, interaction.user.id)
        if member.blocked:
            await interaction.response.send_message(CONTROLS_TEXT["usage.blocked"], ephemeral=True)
            return
        settings = await store.get_quota(interaction.guild_id)
        controls = await store.server_controls(interaction.guild_id)
        user = interaction.user
        role_ids = [role.id for role in user.roles] if isinstance(user, discord.Member) else []
        allowance = quota.allowance(settings.user_daily, controls.role_limits, role_ids, member.limit)
        used = await store.usage(interaction.guild_id, interaction.user.id, day=quota.utc_day(now))
        reset = int(quota.next_reset(now))
        lines = [
            _left("You", used.user_used, allowance.daily),
            _left("This server", used.guild_used, settings.guild_daily),
        ]
        if allowance.source is AllowanceSource.ROLE:
            lines.append(CONTROLS_TEXT["usage.from_role"].format(role=f"<@&{allowance.role_id}>"))
        elif allowance.source is AllowanceSource.MEMBER:
            lines.append(CONTROLS_TEXT["usage.from_member"])
        if settings.max_concurrent is not None:
            lines.append(f"In progress: {used.user_active} of {settings.max_concurrent} at once.")
        weight = quota.effective_4k_weight(settings, self.bot.settings.default_4k_weight)
        if weight > 1 and (allowance.daily or settings.guild_daily):
            lines.append(f"A 4K image counts as {weight}.")
        lines.append(f"Daily use resets <t:{reset}:R> (<t:{reset}:t>, midnight UTC).")
        await interaction.response.send_message(
            "\n".join(lines), ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )


def _left(who: str, used: int, limit: int | None) -> str:
    if limit is None:
        return f"{who}: {used} used today, no daily limit."
    return f"{who}: {max(0, limit - used)} of {limit} left today ({used} used)."


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Quota(bot))

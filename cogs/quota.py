"""Quota commands: ``/quota set|show|reset`` for admins, ``/usage`` for everyone."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import quota
from bot.i18n import Texts
from bot.models import AllowanceSource

if TYPE_CHECKING:
    from bot.app import ImagineBot

Interaction = discord.Interaction["ImagineBot"]

# The catalog key of each setting's label.
FIELD_LABELS = {
    "user_daily": "quota-field-user-daily",
    "guild_daily": "quota-field-guild-daily",
    "max_concurrent": "quota-field-max-concurrent",
    "weight_4k": "quota-field-weight-4k",
}


def _value(t: Texts, field: str, value: int | None) -> str:
    """A setting's value as shown to admins: a limit (or "no limit"), or what a 4K image counts as."""
    if field == "weight_4k":
        return t("quota-weight-default") if value is None else t("quota-images", count=value)
    return t("controls-no-limit") if value is None else t("quota-limit", count=value)


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
        t = self.bot.texts(interaction)
        if interaction.guild_id is None:
            await interaction.response.send_message(t("controls-guild-only"), ephemeral=True)
            return False
        if interaction.permissions.manage_guild:
            return True
        await interaction.response.send_message(t("quota-not-manager"), ephemeral=True)
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
        t = self.bot.texts(interaction)
        given = {"user_daily": user_daily, "guild_daily": guild_daily, "max_concurrent": max_concurrent}
        changes: dict[str, int | None] = {k: (v or None) for k, v in given.items() if v is not None}
        if weight_4k is not None:
            changes["weight_4k"] = weight_4k
        if not changes:
            await interaction.response.send_message(t("quota-nothing-changed"), ephemeral=True)
            return
        settings = await self.bot.store.set_quota(
            interaction.guild_id, changes, user_id=interaction.user.id, now=self.bot.clock()
        )
        lines = [t("quota-updated")]
        lines += [f"**{t(FIELD_LABELS[k])}**: {_value(t, k, getattr(settings, k))}" for k in changes]
        await interaction.response.send_message("\n".join(lines), ephemeral=True)

    @quota.command(name="show", description="Show the limits, today's use and who changed what")
    async def quota_show(self, interaction: Interaction) -> None:
        if not await self._is_manager(interaction):
            return
        assert interaction.guild_id is not None
        t = self.bot.texts(interaction)
        now = self.bot.clock()
        settings = await self.bot.store.get_quota(interaction.guild_id)
        usage = await self.bot.store.usage(interaction.guild_id, interaction.user.id, day=quota.utc_day(now))
        embed = discord.Embed(title=t("quota-title"), colour=discord.Colour.blurple())
        for name in ("user_daily", "guild_daily", "max_concurrent"):
            embed.add_field(name=t(FIELD_LABELS[name]), value=_value(t, name, getattr(settings, name)))
        weight = quota.effective_4k_weight(settings, self.bot.settings.default_4k_weight)
        embed.add_field(name=t(FIELD_LABELS["weight_4k"]), value=_value(t, "weight_4k", weight))
        reset = str(int(quota.next_reset(now)))
        if settings.guild_daily:
            used = t("quota-used-of", used=usage.guild_used, limit=settings.guild_daily, reset=reset)
        else:
            used = t("quota-used", used=usage.guild_used, reset=reset)
        embed.add_field(name=t("quota-used-today"), value=used, inline=False)
        changes = await self.bot.store.quota_changes(interaction.guild_id, limit=8)
        if changes:
            history = []
            for change in changes:
                if change.field.startswith("reset:"):
                    target = change.field.removeprefix("reset:")
                    if target == "server":
                        what = t("quota-change-reset-server")
                    else:
                        what = t("quota-change-reset-member", member=f"<@{target}>")
                else:
                    label = t(FIELD_LABELS[change.field]) if change.field in FIELD_LABELS else change.field
                    old = _value(t, change.field, change.old_value)
                    what = f"{label}: {old} → {_value(t, change.field, change.new_value)}"
                history.append(f"<t:{int(change.at)}:R> <@{change.user_id}> {what}")
            embed.add_field(name=t("quota-recent-changes"), value="\n".join(history)[:1024], inline=False)
        embed.set_footer(text=t("controls-quota-footer"))
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
        t = self.bot.texts(interaction)
        if member is not None:
            text = t("quota-reset-member", member=member.mention, cleared=cleared)
        else:
            text = t("quota-reset-server", cleared=cleared)
        await interaction.response.send_message(
            text,
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )

    @app_commands.command(name="usage", description="How many images you can still make today")
    @app_commands.guild_only()
    async def usage(self, interaction: Interaction) -> None:
        t = self.bot.texts(interaction)
        if interaction.guild_id is None:  # Discord should not send it from a DM, but do not rely on it
            await interaction.response.send_message(t("controls-guild-only"), ephemeral=True)
            return
        now = self.bot.clock()
        store = self.bot.store
        member = await store.member_controls(interaction.guild_id, interaction.user.id)
        if member.blocked:
            await interaction.response.send_message(t("controls-usage-blocked"), ephemeral=True)
            return
        settings = await store.get_quota(interaction.guild_id)
        controls = await store.server_controls(interaction.guild_id)
        user = interaction.user
        role_ids = [role.id for role in user.roles] if isinstance(user, discord.Member) else []
        allowance = quota.allowance(settings.user_daily, controls.role_limits, role_ids, member.limit)
        used = await store.usage(interaction.guild_id, interaction.user.id, day=quota.utc_day(now))
        reset = str(int(quota.next_reset(now)))
        if allowance.daily is None:
            lines = [t("usage-you-unlimited", used=used.user_used)]
        else:
            lines = [
                t(
                    "usage-you-left",
                    left=max(0, allowance.daily - used.user_used),
                    limit=allowance.daily,
                    used=used.user_used,
                )
            ]
        if settings.guild_daily is None:
            lines.append(t("usage-server-unlimited", used=used.guild_used))
        else:
            left = max(0, settings.guild_daily - used.guild_used)
            lines.append(t("usage-server-left", left=left, limit=settings.guild_daily, used=used.guild_used))
        if allowance.source is AllowanceSource.ROLE:
            lines.append(t("controls-usage-from-role", role=f"<@&{allowance.role_id}>"))
        elif allowance.source is AllowanceSource.MEMBER:
            lines.append(t("controls-usage-from-member"))
        if settings.max_concurrent is not None:
            lines.append(t("usage-in-progress", active=used.user_active, limit=settings.max_concurrent))
        weight = quota.effective_4k_weight(settings, self.bot.settings.default_4k_weight)
        if weight > 1 and (allowance.daily or settings.guild_daily):
            lines.append(t("usage-weight-4k", weight=weight))
        lines.append(t("usage-resets", reset=reset))
        await interaction.response.send_message(
            "\n".join(lines), ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Quota(bot))

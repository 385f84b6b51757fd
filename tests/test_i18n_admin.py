"""The quota, server-control and history answers in the member's language: with ``locale`` ``ru`` on the
interaction, ``/quota set|show``, ``/usage``, ``/settings show`` and ``/history`` answer in Russian, plural
forms included (1 изображение, 2 изображения, 5 изображений); the commands carry Russian names."""

from __future__ import annotations

from typing import Any

import pytest

from bot.devtools.fakediscord import FakeInteraction, FakeUser
from tests.conftest import StartWorld
from tests.harness import Rig
from tests.test_e2e_history import buttons, description, make_images, page, private_message
from tests.test_e2e_imagine import EPHEMERAL, private_answer

FAST = {"job_duration": 0.01}
RU = "ru"

# A daily limit of n images, in Russian: the three plural forms.
IMAGES = {1: "1 изображение", 2: "2 изображения", 5: "5 изображений"}


async def as_russian(rig: Rig, name: str, user: FakeUser, **options: Any) -> FakeInteraction:
    """``/name`` from a Russian client; ``override_permissions`` lets a non-manager send it anyway."""
    override = bool(options.pop("override_permissions", False))
    return await rig.fake.invoke(name, user, options=options, locale=RU, override_permissions=override)


async def private_embed(interaction: FakeInteraction) -> dict[str, Any]:
    response = await interaction.wait_response()
    assert response["type"] == 4 and response["data"]["flags"] & EPHEMERAL, response
    embed: dict[str, Any] = response["data"]["embeds"][0]
    return embed


def fields(embed: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f["value"] for f in embed["fields"]}


@pytest.mark.parametrize("daily", sorted(IMAGES))
async def test_quota_usage_and_settings_answer_in_russian_with_plurals(world: StartWorld, daily: int) -> None:
    rig = await world(sim=FAST)
    manager = rig.fake.manager

    confirmation = await private_answer(await as_russian(rig, "quota set", manager, user_daily=daily))
    assert confirmation == f"Квота обновлена.\n**На участника в день**: {IMAGES[daily]}", confirmation

    embed = await private_embed(await as_russian(rig, "quota show", manager))
    shown = fields(embed)
    assert embed["title"] == "Квота изображений"
    assert shown["На участника в день"] == IMAGES[daily]
    assert shown["На весь сервер в день"] == "без лимита"
    assert shown["Изображение 4K считается за"] == "2 изображения"
    assert shown["Использовано сегодня (сервер)"].startswith("0 · обнулится <t:")
    assert f"без лимита → {IMAGES[daily]}" in shown["Последние изменения"]
    assert "/настройки показать" in embed["footer"]["text"]

    usage = await private_answer(await as_russian(rig, "usage", rig.fake.alice))
    assert f"Вы: на сегодня осталось {IMAGES[daily]} из {daily} (использовано 0)." in usage, usage
    assert "Сервер: сегодня использовано 0, дневного лимита нет." in usage, usage
    assert "Дневной лимит обновится <t:" in usage and "полночь UTC" in usage, usage

    embed = await private_embed(await as_russian(rig, "settings show", manager))
    shown = fields(embed)
    assert embed["title"] == "Настройки сервера"
    assert shown["Дневной лимит на участника (по умолчанию)"] == f"{IMAGES[daily]} в день"
    assert shown["Лимиты ролей"] == shown["Заблокированные участники"] == shown["Канал журнала"] == "нет"
    assert shown["4K"] == "4K доступно всем."


async def test_russian_refusals_and_english_for_an_english_client(world: StartWorld) -> None:
    rig = await world()
    refused = await private_answer(await as_russian(rig, "quota show", rig.fake.alice, override_permissions=True))
    assert refused.startswith("Менять и смотреть настройки квоты могут только") and "«Управлять сервером»" in refused
    nothing = await private_answer(await as_russian(rig, "quota set", rig.fake.manager))
    assert nothing.startswith("Ничего не изменено")
    limit = await private_answer(
        await as_russian(rig, "settings limit member", rig.fake.manager, member=rig.fake.alice, daily=2)
    )
    assert limit == f"Дневной лимит участника <@{rig.fake.alice.id}>: 2 изображения в день, независимо от ролей."
    english = await private_answer(await rig.fake.invoke("usage", rig.fake.alice))
    assert english.startswith("You: 2 of 2 left today (0 used).") and "set for you by an admin" in english


async def test_history_pages_in_the_language_of_whoever_presses(world: StartWorld) -> None:
    rig = await world(sim=FAST)
    await make_images(rig, rig.fake.alice, 6)
    message = await private_message(await as_russian(rig, "history", rig.fake.alice))
    assert description(message).startswith("Ваши изображения на этом сервере, сначала новые.")
    assert description(message).count("✅ Доставлено") == 5 and "К сообщению" in description(message)
    assert set(buttons(message)) == {"Назад", "Дальше"}
    # A persistent button: the click carries the presser's language (here English again).
    await page(rig, message, "Дальше", rig.fake.alice)
    assert description(message).startswith("Your images in this server, newest first.")
    assert set(buttons(message)) == {"Previous", "Next"}
    click = await rig.fake.press_button(
        message, buttons(message)["Next"]["custom_id"], rig.fake.bob, validate=False, locale=RU
    )
    assert await private_answer(click) == "Листать этот список может только тот, кто его открыл."


async def test_commands_carry_russian_names_and_descriptions(world: StartWorld) -> None:
    rig = await world()
    guild_id = rig.fake.guild.id
    names = {}
    for name in ("quota", "usage", "settings", "history", "jobs"):
        command = rig.fake.command(name, guild_id=guild_id) or rig.fake.command(name)
        assert command is not None, name
        assert command["description_localizations"][RU], name
        names[name] = command["name_localizations"][RU]
    assert names == {
        "quota": "квота",
        "usage": "лимиты",
        "settings": "настройки",
        "history": "история",
        "jobs": "задачи",
    }
    settings = rig.fake.command("settings", guild_id=guild_id) or rig.fake.command("settings")
    assert settings is not None
    four_k = next(o for o in settings["options"] if o["name"] == "4k")
    access = next(o for o in four_k["options"] if o["name"] == "access")
    assert access["name_localizations"][RU] == "доступ"
    who = access["options"][0]
    assert who["name_localizations"][RU] == "кому"
    assert [c["name_localizations"][RU] for c in who["choices"]] == [
        "Всем",
        "Только указанным ролям",
        "Никому (4K выключено)",
    ]

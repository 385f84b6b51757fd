"""A member whose Discord speaks Russian: the job's reply in every state, the buttons, a refusal and
the command picker, through the fake Discord and the simulator."""

from __future__ import annotations

from bot.devtools.fakediscord.state import iter_components
from tests.conftest import StartWorld
from tests.harness import embed_text
from tests.test_e2e_cancel import block_queue

RU = "ru"


async def test_a_russian_members_reply_speaks_russian_in_every_state(world: StartWorld) -> None:
    rig = await world(sim={"manual": True})
    await block_queue(rig.sim.base_url, 1)
    interaction = await rig.fake.invoke("imagine", rig.fake.alice, options={"prompt": "маяк на закате"}, locale=RU)
    reply = await interaction.wait_original(lambda m: "В очереди, позиция 1" in embed_text(m))
    labels = [c.get("label") for c in iter_components(reply.components) if c.get("type") == 2]
    assert labels == ["Отменить"]
    blocker = next(j for j in rig.sim.jobs.values() if j.state == "IN_PROGRESS")
    rig.sim.finish(blocker.request_id)
    await interaction.wait_original(lambda m: "Генерация" in embed_text(m))
    ours = next(j for j in rig.sim.jobs.values() if j.body["prompt"] == "маяк на закате")
    rig.sim.finish(ours.request_id)
    done = await interaction.wait_original(lambda m: bool(m.attachments), timeout=10.0)
    assert "Готово" in embed_text(done) and "Заняло" in embed_text(done)
    labels = [c.get("label") for c in iter_components(done.components) if c.get("type") == 2]
    assert labels == ["Ещё раз", "Изменить", "Вариация", "Увеличить"]

    failing = await rig.fake.invoke("imagine", rig.fake.alice, options={"prompt": "не выйдет"}, locale=RU)
    await rig.sim.wait_for(
        lambda: any(j.body["prompt"] == "не выйдет" and j.state == "IN_PROGRESS" for j in rig.sim.jobs.values())
    )
    failed_job = next(j for j in rig.sim.jobs.values() if j.body["prompt"] == "не выйдет")
    rig.sim.finish(failed_job.request_id, "CONTENT_BLOCKED")
    failed = await failing.wait_original(lambda m: "На этот раз без изображения" in embed_text(m))
    assert "Это не засчитано в ваш лимит." in embed_text(failed)

    cancelling = await rig.fake.invoke("imagine", rig.fake.alice, options={"prompt": "передумал"}, locale=RU)
    reply = await cancelling.wait_original(lambda m: "Генерация" in embed_text(m))
    await rig.fake.react(reply, "❌", rig.fake.alice)
    cancelled = await cancelling.wait_original(lambda m: "Отменено" in embed_text(m))
    assert "во время генерации" in embed_text(cancelled)


async def test_russian_refusals_are_private_and_nothing_is_reserved(world: StartWorld) -> None:
    rig = await world()
    limit = await rig.fake.invoke("quota", rig.fake.admin, subcommand="set", options={"user_daily": 1})
    await limit.wait_response()
    first = await rig.fake.invoke("imagine", rig.fake.alice, options={"prompt": "первое"}, locale=RU)
    await first.wait_original(lambda m: bool(m.attachments), timeout=10.0)
    second = await rig.fake.invoke("imagine", rig.fake.alice, options={"prompt": "второе"}, locale=RU)
    answer = (await second.wait_response())["data"]
    assert answer["flags"] & 64 and answer["content"].startswith("Вы достигли своего дневного лимита")
    assert "сегодня использовано 1 из 1" in answer["content"]
    too_long = await rig.fake.invoke("imagine", rig.fake.bob, options={"prompt": "x" * 2600}, locale=RU, validate=False)
    answer = (await too_long.wait_response())["data"]
    assert answer["content"].startswith("В запросе 2\xa0600 символов")
    assert len(rig.sim.submits()) == 1


async def test_the_synced_commands_carry_russian_names_and_descriptions(world: StartWorld) -> None:
    rig = await world()
    imagine = rig.fake.command("imagine")
    assert imagine is not None
    assert (imagine.get("name_localizations") or {}).get("ru") == "нарисовать"
    assert (imagine.get("description_localizations") or {}).get("ru", "").startswith("Создать изображение")
    prompt = next(o for o in imagine["options"] if o["name"] == "prompt")
    assert (prompt.get("name_localizations") or {}).get("ru") == "запрос"

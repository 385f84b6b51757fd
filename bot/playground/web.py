"""The playground's web server: the page, a live feed of what a member sees, and what members do.

Routes (all on 127.0.0.1):

* ``GET /``, ``GET /static/{name}``: the page (plain HTML, CSS and one small script).
* ``GET /api/events?member=ID``: server-sent events, one ``data:`` line with the member's whole view
  (:func:`bot.playground.view.world_view`) each time it changes.
* ``POST /api/command``, ``/api/button``, ``/api/select``, ``/api/modal``, ``/api/react``: a member
  runs a slash command, presses a button, picks in a menu, submits a form or toggles a reaction. They
  go through the fake Discord's helpers, which refuse what Discord's client would not send. The answer
  is ``{"ok": true}``, ``{"modal": {...}, "interaction": ID}`` when the bot answered with a form, or
  ``{"error": "..."}`` (what Discord's client would show).

Every ``POST`` must carry the header ``X-Playground: 1``: a page from another site cannot add it
without the browser asking first (CORS), which this server never allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Final

from aiohttp import BodyPartReader, web

from bot.devtools.fakediscord import DiscordRejected, FakeAttachment, FakeInteraction, FakeUser
from bot.playground.view import JSON, commands_for, world_view
from bot.playground.world import World

STATIC = Path(__file__).parent / "static"
STATIC_FILES: Final = {"app.js": "text/javascript", "style.css": "text/css", "index.html": "text/html"}
WORLD_KEY: Final = web.AppKey("world", World)
#: Seconds between keep-alive comments on an idle event stream.
KEEPALIVE = 15.0
#: Discord's client gives up on an interaction the bot has not answered within 3 s.
ANSWER_WAIT = 3.5
# Option types of slash commands.
STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = 3, 4, 5, 6, 7, 8, 9, 10, 11

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Refused(Exception):
    """Something the page asked for that Discord's client would not do; the text is shown."""


def _world(request: web.Request) -> World:
    return request.app[WORLD_KEY]


def _member(world: World, member_id: object) -> FakeUser:
    for member in world.members:
        if member.user.id == str(member_id):
            return member.user
    raise Refused("unknown member")


def _members(world: World) -> list[JSON]:
    return [{"id": m.user.id, "name": m.label, "role": m.role} for m in world.members]


async def _form(request: web.Request) -> tuple[dict[str, Any], dict[str, list[FakeAttachment]]]:
    """A POST's fields (the JSON in its ``payload`` part, or its JSON body) and its uploaded files,
    each stored in the fake Discord as a member's upload, by form field name."""
    if not request.content_type.startswith("multipart/"):
        body = await request.json()
        if not isinstance(body, dict):
            raise Refused("the request must be a JSON object")
        return body, {}
    fields: dict[str, Any] = {}
    files: dict[str, list[FakeAttachment]] = {}
    fake = _world(request).fake
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        if part.filename is None:
            if part.name == "payload":
                fields = json.loads(await part.text())
            continue
        data = await part.read()
        upload = fake.upload(part.filename, bytes(data), part.headers.get("Content-Type"))
        files.setdefault(part.name, []).append(upload)
    return fields, files


async def _answer(interaction: FakeInteraction) -> web.Response:
    """Wait for the bot's first answer, as Discord's client does."""
    try:
        response = await interaction.wait_response(timeout=ANSWER_WAIT)
    except AssertionError:
        return web.json_response({"error": "The application did not respond"})
    if response["type"] == 9 and interaction.modal is not None:
        return web.json_response({"modal": interaction.modal, "interaction": interaction.id})
    return web.json_response({"ok": True})


def _command_options(
    world: World, name: str, viewer: FakeUser, values: dict[str, Any], files: dict[str, list[FakeAttachment]]
) -> dict[str, Any]:
    """The page's option values (strings, ids) typed as the command's definition says."""
    fake = world.fake
    command = next((c for c in commands_for(world.fake, viewer) if c["name"] == name), None)
    if command is None:
        raise Refused(f"/{name} is not a command you can use here")
    options: dict[str, Any] = {}
    for definition in command["options"]:
        key = definition["name"]
        kind = definition["type"]
        if kind == ATTACHMENT:
            if files.get(key):
                options[key] = files[key][0]
            continue
        raw = values.get(key)
        if raw is None or raw == "":
            continue
        try:
            if kind == INTEGER:
                options[key] = int(raw)
            elif kind == NUMBER:
                options[key] = float(raw)
            elif kind == BOOLEAN:
                options[key] = raw in (True, "true", "on", "1")
            elif kind in (USER, MENTIONABLE) and str(raw) in fake.users:
                options[key] = fake.users[str(raw)]
            elif kind in (ROLE, MENTIONABLE) and str(raw) in fake.guild.roles:
                options[key] = fake.guild.roles[str(raw)]
            elif kind == CHANNEL:
                channel = fake.channel_by_id(str(raw))
                if channel is None:
                    raise Refused(f"{key}: unknown channel")
                options[key] = channel
            else:
                options[key] = str(raw)
        except ValueError as exc:
            raise Refused(f"{key}: {raw!r} is not a number") from exc
    return options


# ---------------------------------------------------------------------------------------- handlers


async def index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in STATIC_FILES:
        raise web.HTTPNotFound()
    return web.FileResponse(STATIC / name, headers={"Cache-Control": "no-store"})


async def events(request: web.Request) -> web.StreamResponse:
    """The member's view now, and again after every change to it."""
    world = _world(request)
    try:
        viewer = _member(world, request.query.get("member", world.members[0].user.id))
    except Refused as exc:
        raise web.HTTPNotFound(text=str(exc)) from exc
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
    await response.prepare(request)
    members = _members(world)
    last = ""
    with contextlib.suppress(ConnectionResetError):
        while not world.fake.closing:
            seen = world.fake.change_count
            body = json.dumps(world_view(world.fake, viewer, members), separators=(",", ":"))
            if body != last:
                await response.write(f"data: {body}\n\n".encode())
                last = body
            if not await world.fake.wait_changed(seen, KEEPALIVE):
                await response.write(b": keep-alive\n\n")
    return response


async def command(request: web.Request) -> web.StreamResponse:
    world = _world(request)
    fields, files = await _form(request)
    viewer = _member(world, fields.get("member"))
    name = str(fields.get("command", "")).strip().lstrip("/")
    options = _command_options(world, name, viewer, dict(fields.get("options") or {}), files)
    interaction = await world.fake.invoke(name, viewer, options=options, locale=str(fields.get("locale") or "en-US"))
    return await _answer(interaction)


async def button(request: web.Request) -> web.StreamResponse:
    world = _world(request)
    fields, _ = await _form(request)
    viewer = _member(world, fields.get("member"))
    interaction = await world.fake.press_button(
        str(fields.get("message")), str(fields.get("custom_id")), viewer, locale=str(fields.get("locale") or "en-US")
    )
    return await _answer(interaction)


async def select(request: web.Request) -> web.StreamResponse:
    world = _world(request)
    fields, _ = await _form(request)
    viewer = _member(world, fields.get("member"))
    values = [str(v) for v in fields.get("values") or []]
    interaction = await world.fake.select(str(fields.get("message")), str(fields.get("custom_id")), values, viewer)
    return await _answer(interaction)


async def modal(request: web.Request) -> web.StreamResponse:
    world = _world(request)
    fields, files = await _form(request)
    viewer = _member(world, fields.get("member"))
    opened = world.fake.interactions.get(str(fields.get("interaction")))
    if opened is None or opened.modal is None:
        raise Refused("this form is no longer open")
    values: dict[str, Any] = dict(fields.get("values") or {})
    for custom_id, uploads in files.items():
        values[custom_id] = uploads
    submit = await world.fake.submit_modal(opened, values, viewer)
    return await _answer(submit)


async def react(request: web.Request) -> web.StreamResponse:
    """Add the member's reaction, or take it back if it is there (as clicking one in Discord does)."""
    world = _world(request)
    fields, _ = await _form(request)
    viewer = _member(world, fields.get("member"))
    message = world.fake.messages.get(str(fields.get("message")))
    emoji = str(fields.get("emoji") or "")
    if message is None or not emoji:
        raise Refused("no such message")
    if viewer.id in message.reactions.get(emoji, []):
        await world.fake.unreact(message, emoji, viewer)
    else:
        await world.fake.react(message, emoji, viewer)
    return web.json_response({"ok": True})


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """POSTs only from the page itself; refusals as ``{"error": ...}``."""
    if request.method == "POST":
        if request.headers.get("X-Playground") != "1":
            return web.json_response({"error": "missing X-Playground header"}, status=403)
        try:
            return await handler(request)
        except (Refused, DiscordRejected, KeyError, ValueError) as exc:
            message = exc.args[0] if exc.args else type(exc).__name__
            return web.json_response({"error": str(message)}, status=400)
    return await handler(request)


def create_app(world: World) -> web.Application:
    app = web.Application(middlewares=[guard], client_max_size=64 * 1024 * 1024)
    app[WORLD_KEY] = world
    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/api/events", events)
    for name, handler in (
        ("command", command),
        ("button", button),
        ("select", select),
        ("modal", modal),
        ("react", react),
    ):
        app.router.add_post(f"/api/{name}", handler)
    return app


@contextlib.asynccontextmanager
async def serve(world: World, host: str, port: int) -> AsyncIterator[str]:
    """Serve the page for the duration of the block; yields its URL."""
    runner = web.AppRunner(create_app(world), access_log=None, shutdown_timeout=1.0, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1]
        yield f"http://{host}:{bound}/"
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await runner.cleanup()

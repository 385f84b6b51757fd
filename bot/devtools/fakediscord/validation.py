"""Discord's rules, as the fake enforces them: request bodies, command schemas, client-side refusals, pings."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from .state import JSON, MessageFlag, Permission, iter_components


class DiscordRejected(Exception):
    """Discord's client would refuse to send this interaction (nothing was dispatched)."""


class ApiError(Exception):
    """An error answer of the REST API: ``status`` plus Discord's JSON error ``code``."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        errors: JSON | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.headers = headers or {}


def unknown_message() -> ApiError:
    return ApiError(404, 10008, "Unknown Message")


def unknown_channel() -> ApiError:
    return ApiError(404, 10003, "Unknown Channel")


def missing_permissions() -> ApiError:
    return ApiError(403, 50013, "Missing Permissions")


def missing_access() -> ApiError:
    return ApiError(403, 50001, "Missing Access")


class FormErrors:
    """Collects field errors in Discord's nested ``errors`` format (answered as 400 code 50035)."""

    def __init__(self) -> None:
        self.tree: JSON = {}

    def add(self, path: Sequence[str | int], code: str, message: str) -> None:
        node = self.tree
        for key in path:
            node = node.setdefault(str(key), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def __bool__(self) -> bool:
        return bool(self.tree)

    def raise_if_any(self) -> None:
        if self.tree:
            raise ApiError(400, 50035, "Invalid Form Body", self.tree)


# --------------------------------------------------------------------------------------------------
# Application command definitions (PUT bulk overwrite)
# --------------------------------------------------------------------------------------------------

CHAT_INPUT, USER_COMMAND, MESSAGE_COMMAND = 1, 2, 3
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = 3, 4, 5, 6, 7, 8, 9, 10, 11
MAX_SAFE_INTEGER = 2**53

_NAME_RE = re.compile(r"^[-_'\w]{1,32}$")


def _check_name(errors: FormErrors, path: list[str | int], name: Any, *, chat_input: bool) -> None:
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        errors.add([*path, "name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
        return
    if chat_input and (not _NAME_RE.match(name) or name != name.lower()):
        errors.add([*path, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")


def _check_description(errors: FormErrors, path: list[str | int], description: Any) -> None:
    if not isinstance(description, str) or not 1 <= len(description) <= 100:
        errors.add([*path, "description"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")


def _text_size(definition: JSON) -> int:
    size = len(str(definition.get("name", ""))) + len(str(definition.get("description", "")))
    for option in definition.get("options") or []:
        size += _text_size(option)
    for choice in definition.get("choices") or []:
        size += len(str(choice.get("name", ""))) + len(str(choice.get("value", "")))
    return size


def _check_options(errors: FormErrors, path: list[str | int], options: Any, *, depth: int) -> None:
    if options is None:
        return
    if not isinstance(options, list):
        errors.add(path, "LIST_TYPE_CONVERT", "Must be an array.")
        return
    if len(options) > 25:
        errors.add(path, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    seen: set[str] = set()
    optional_seen = False
    kinds = {o.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in options if isinstance(o, dict)}
    if len(kinds) > 1:
        errors.add(path, "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID", "Sub-commands cannot be mixed with options")
    for index, option in enumerate(options):
        opath: list[str | int] = [*path, index]
        if not isinstance(option, dict):
            errors.add(opath, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
            continue
        otype = option.get("type")
        if otype not in range(1, 12):
            errors.add([*opath, "type"], "BASE_TYPE_CHOICES", f"Value must be one of (1..11), got {otype!r}.")
            continue
        _check_name(errors, opath, option.get("name"), chat_input=True)
        _check_description(errors, opath, option.get("description"))
        name = str(option.get("name"))
        if name in seen:
            errors.add([*opath, "name"], "APPLICATION_COMMAND_OPTION_NAME_NOT_UNIQUE", "Option name is not unique")
        seen.add(name)
        if otype == SUB_COMMAND_GROUP:
            if depth > 0:
                errors.add([*opath, "type"], "APPLICATION_COMMAND_OPTION_TYPE_INVALID", "Groups cannot be nested")
            for sub_index, sub in enumerate(option.get("options") or []):
                if isinstance(sub, dict) and sub.get("type") != SUB_COMMAND:
                    errors.add(
                        [*opath, "options", sub_index, "type"],
                        "APPLICATION_COMMAND_OPTION_TYPE_INVALID",
                        "A sub-command group may only contain sub-commands",
                    )
            _check_options(errors, [*opath, "options"], option.get("options"), depth=depth + 1)
            continue
        if otype == SUB_COMMAND:
            if depth > 1:
                errors.add([*opath, "type"], "APPLICATION_COMMAND_OPTION_TYPE_INVALID", "Too deeply nested")
            _check_options(errors, [*opath, "options"], option.get("options"), depth=2)
            continue
        if option.get("required"):
            if optional_seen:
                errors.add(
                    [*opath, "required"],
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            optional_seen = True
        choices = option.get("choices")
        if choices:
            if option.get("autocomplete"):
                errors.add([*opath, "autocomplete"], "AUTOCOMPLETE_WITH_CHOICES", "Cannot use both")
            if otype not in (STRING, INTEGER, NUMBER):
                errors.add([*opath, "choices"], "APPLICATION_COMMAND_OPTION_CHOICES", "Choices not allowed")
            if len(choices) > 25:
                errors.add([*opath, "choices"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
            for cindex, choice in enumerate(choices):
                cname = choice.get("name") if isinstance(choice, dict) else None
                if not isinstance(cname, str) or not 1 <= len(cname) <= 100:
                    errors.add([*opath, "choices", cindex, "name"], "BASE_TYPE_BAD_LENGTH", "Must be 1 to 100 long.")
                value = choice.get("value") if isinstance(choice, dict) else None
                if otype == STRING and (not isinstance(value, str) or len(value) > 100):
                    errors.add([*opath, "choices", cindex, "value"], "BASE_TYPE_BAD_LENGTH", "Bad value.")
        if "min_length" in option and option["min_length"] is not None and not 0 <= option["min_length"] <= 6000:
            errors.add([*opath, "min_length"], "NUMBER_TYPE_MAX", "Must be between 0 and 6000.")
        if "max_length" in option and option["max_length"] is not None and not 1 <= option["max_length"] <= 6000:
            errors.add([*opath, "max_length"], "NUMBER_TYPE_MAX", "Must be between 1 and 6000.")


def validate_command_definitions(definitions: Any) -> FormErrors:
    """Checks Discord applies to a bulk overwrite (names, lengths, nesting, counts, 8000-char budget)."""
    errors = FormErrors()
    if not isinstance(definitions, list):
        errors.add([], "LIST_TYPE_CONVERT", "Must be an array.")
        return errors
    counts = {CHAT_INPUT: 0, USER_COMMAND: 0, MESSAGE_COMMAND: 0}
    seen: set[tuple[int, str]] = set()
    for index, definition in enumerate(definitions):
        path: list[str | int] = [index]
        if not isinstance(definition, dict):
            errors.add(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
            continue
        ctype = int(definition.get("type", CHAT_INPUT))
        if ctype not in counts:
            errors.add([*path, "type"], "BASE_TYPE_CHOICES", "Value must be one of (1, 2, 3).")
            continue
        counts[ctype] += 1
        name = definition.get("name")
        _check_name(errors, path, name, chat_input=ctype == CHAT_INPUT)
        if (ctype, str(name)) in seen:
            errors.add([*path, "name"], "APPLICATION_COMMANDS_DUPLICATE_NAME", f"Duplicate name {name!r}")
        seen.add((ctype, str(name)))
        if ctype == CHAT_INPUT:
            _check_description(errors, path, definition.get("description"))
            _check_options(errors, [*path, "options"], definition.get("options"), depth=0)
            if _text_size(definition) > 8000:
                errors.add(path, "APPLICATION_COMMAND_TOO_LARGE", "Command exceeds maximum size (8000)")
        else:
            if definition.get("options"):
                errors.add([*path, "options"], "APPLICATION_COMMAND_OPTIONS_INVALID", "Context menus take none")
            if definition.get("description"):
                errors.add([*path, "description"], "APPLICATION_COMMAND_CONTEXT_MENU_DESCRIPTION", "Must be empty")
        perms = definition.get("default_member_permissions")
        if perms is not None and not str(perms).isdigit():
            errors.add([*path, "default_member_permissions"], "NUMBER_TYPE_COERCE", "Value is not int.")
    if counts[CHAT_INPUT] > 100 or counts[USER_COMMAND] > 15 or counts[MESSAGE_COMMAND] > 15:
        errors.add([], "APPLICATION_COMMANDS_LIMIT", "Maximum number of application commands reached")
    return errors


# --------------------------------------------------------------------------------------------------
# What Discord's client refuses to send (invoke helpers raise DiscordRejected)
# --------------------------------------------------------------------------------------------------


def command_permitted(command: JSON, member_permissions: int) -> bool:
    """``default_member_permissions``: None = everyone, "0" = admins only, else all bits needed."""
    required = command.get("default_member_permissions")
    if member_permissions & Permission.ADMINISTRATOR:
        return True
    if not member_permissions & Permission.USE_APPLICATION_COMMANDS:
        return False
    if required is None:
        return True
    bits = int(required)
    if bits == 0:
        return False
    return member_permissions & bits == bits


def command_contexts(command: JSON, *, guild_command: bool) -> set[int]:
    """Interaction contexts (0 guild, 1 bot DM, 2 private channel) a command may be used in."""
    if guild_command:
        return {0}
    contexts = command.get("contexts")
    if contexts is not None:
        return {int(c) for c in contexts}
    allowed = {0, 1, 2}
    if command.get("dm_permission") is False:
        allowed -= {1, 2}
    installs = command.get("integration_types") or [0]
    if 1 not in [int(i) for i in installs]:
        allowed.discard(2)
    return allowed


def locate_options(
    command: JSON, *, group: str | None, subcommand: str | None, validate: bool
) -> tuple[list[JSON], list[tuple[int, str]]]:
    """Return (option definitions of the leaf, [(type, name)] wrappers from the top)."""
    options: list[JSON] = list(command.get("options") or [])
    has_subs = any(o.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in options)
    if not has_subs:
        if (group or subcommand) and validate:
            raise DiscordRejected(f"/{command['name']} has no sub-commands")
        return options, []
    wrappers: list[tuple[int, str]] = []
    if group is not None:
        match = next((o for o in options if o.get("type") == SUB_COMMAND_GROUP and o["name"] == group), None)
        if match is None:
            if validate:
                raise DiscordRejected(f"/{command['name']} has no sub-command group {group!r}")
            wrappers.append((SUB_COMMAND_GROUP, group))
            options = []
        else:
            wrappers.append((SUB_COMMAND_GROUP, group))
            options = list(match.get("options") or [])
    if subcommand is None:
        if validate:
            raise DiscordRejected(f"/{command['name']} needs a sub-command")
        return options, wrappers
    match = next((o for o in options if o.get("type") == SUB_COMMAND and o["name"] == subcommand), None)
    if match is None:
        if validate:
            where = f"group {group!r}" if group else f"/{command['name']}"
            raise DiscordRejected(f"{where} has no sub-command {subcommand!r}")
        wrappers.append((SUB_COMMAND, subcommand))
        return [], wrappers
    wrappers.append((SUB_COMMAND, subcommand))
    return list(match.get("options") or []), wrappers


def check_scalar_option(definition: JSON, value: Any) -> None:
    """Type, length, range and choice checks for string/integer/number/boolean options."""
    name = definition["name"]
    otype = definition["type"]
    if otype == STRING:
        if not isinstance(value, str):
            raise DiscordRejected(f"option {name!r} must be a string, got {value!r}")
        if value.strip() == "":
            raise DiscordRejected(f"option {name!r}: the client does not send an empty string")
        min_length = definition.get("min_length")
        max_length = definition.get("max_length", 6000)
        if min_length is not None and len(value) < min_length:
            raise DiscordRejected(f"option {name!r} is shorter than min_length={min_length}")
        if max_length is not None and len(value) > max_length:
            raise DiscordRejected(f"option {name!r} is longer than max_length={max_length}")
    elif otype in (INTEGER, NUMBER):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DiscordRejected(f"option {name!r} must be a number, got {value!r}")
        if otype == INTEGER and not isinstance(value, int):
            raise DiscordRejected(f"option {name!r} must be an integer, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise DiscordRejected(f"option {name!r} must be finite")
        if abs(value) > MAX_SAFE_INTEGER:
            raise DiscordRejected(f"option {name!r} is outside -2^53..2^53")
        min_value = definition.get("min_value")
        max_value = definition.get("max_value")
        if min_value is not None and value < min_value:
            raise DiscordRejected(f"option {name!r}={value} is below min_value={min_value}")
        if max_value is not None and value > max_value:
            raise DiscordRejected(f"option {name!r}={value} is above max_value={max_value}")
    elif otype == BOOLEAN and not isinstance(value, bool):
        raise DiscordRejected(f"option {name!r} must be a boolean, got {value!r}")
    choices = definition.get("choices")
    if choices and value not in [c["value"] for c in choices]:
        allowed = ", ".join(repr(c["value"]) for c in choices)
        raise DiscordRejected(f"option {name!r}={value!r} is not one of the choices ({allowed})")


def check_required(definitions: Iterable[JSON], provided: Iterable[str]) -> None:
    given = set(provided)
    for definition in definitions:
        if definition.get("required") and definition["name"] not in given:
            raise DiscordRejected(f"required option {definition['name']!r} is missing")


# --------------------------------------------------------------------------------------------------
# Request bodies
# --------------------------------------------------------------------------------------------------

_ALLOWED_CREATE_FLAGS = int(
    MessageFlag.SUPPRESS_EMBEDS
    | MessageFlag.EPHEMERAL
    | MessageFlag.SUPPRESS_NOTIFICATIONS
    | MessageFlag.IS_COMPONENTS_V2
)
_EMBED_LIMITS = {"title": 256, "description": 4096}


def _embed_size(embed: JSON) -> int:
    size = len(str(embed.get("title") or "")) + len(str(embed.get("description") or ""))
    for item in embed.get("fields") or []:
        size += len(str(item.get("name") or "")) + len(str(item.get("value") or ""))
    size += len(str((embed.get("footer") or {}).get("text") or ""))
    size += len(str((embed.get("author") or {}).get("name") or ""))
    return size


def validate_message_body(body: JSON, *, file_count: int) -> FormErrors:
    """Length and count limits of a message create/edit body (content, embeds, files, flags, mentions)."""
    errors = FormErrors()
    content = body.get("content")
    if content is not None:
        if not isinstance(content, str):
            errors.add(["content"], "BASE_TYPE_STRING", "Must be a string.")
        elif len(content) > 2000:
            errors.add(["content"], "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
    embeds = body.get("embeds")
    if embeds is not None:
        if not isinstance(embeds, list):
            errors.add(["embeds"], "LIST_TYPE_CONVERT", "Must be an array.")
        else:
            if len(embeds) > 10:
                errors.add(["embeds"], "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
            total = 0
            for index, embed in enumerate(embeds):
                if not isinstance(embed, dict):
                    errors.add(["embeds", index], "DICT_TYPE_CONVERT", "Must be an object.")
                    continue
                for key, limit in _EMBED_LIMITS.items():
                    if len(str(embed.get(key) or "")) > limit:
                        errors.add(["embeds", index, key], "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer.")
                fields = embed.get("fields") or []
                if len(fields) > 25:
                    errors.add(["embeds", index, "fields"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer.")
                for findex, item in enumerate(fields):
                    if len(str(item.get("name") or "")) > 256:
                        errors.add(["embeds", index, "fields", findex, "name"], "BASE_TYPE_MAX_LENGTH", "<= 256")
                    if len(str(item.get("value") or "")) > 1024:
                        errors.add(["embeds", index, "fields", findex, "value"], "BASE_TYPE_MAX_LENGTH", "<= 1024")
                total += _embed_size(embed)
            if total > 6000:
                errors.add(["embeds"], "MESSAGE_EMBEDS_TOO_LARGE", "Embed size exceeds maximum size of 6000")
    if file_count > 10:
        errors.add(["files"], "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    flags = body.get("flags")
    if flags is not None and int(flags) & ~_ALLOWED_CREATE_FLAGS:
        errors.add(["flags"], "MESSAGE_FLAGS_INVALID", "Invalid flags")
    components = body.get("components")
    if isinstance(components, list):
        v2 = bool(int(flags or 0) & MessageFlag.IS_COMPONENTS_V2)
        if not v2 and len(components) > 5:
            errors.add(["components"], "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
        if v2 and (body.get("content") or body.get("embeds")):
            errors.add(["content"], "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2", "Not with V2")
        for component in iter_components(components):
            custom_id = component.get("custom_id")
            if custom_id is not None and not 1 <= len(str(custom_id)) <= 100:
                errors.add(["components"], "BASE_TYPE_BAD_LENGTH", "custom_id must be 1 to 100 long.")
    mentions = body.get("allowed_mentions")
    if isinstance(mentions, dict):
        parse = mentions.get("parse") or []
        for value in parse:
            if value not in ("users", "roles", "everyone"):
                errors.add(["allowed_mentions", "parse"], "BASE_TYPE_CHOICES", f"Invalid value {value!r}")
        for kind in ("users", "roles"):
            listed = mentions.get(kind) or []
            if listed and kind in parse:
                errors.add(
                    ["allowed_mentions", kind],
                    "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                    f'parse:["{kind}"] and {kind}: [ids] are mutually exclusive.',
                )
            if len(listed) > 100:
                errors.add(["allowed_mentions", kind], "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer.")
    return errors


_MODAL_TOP_LEVEL = {1, 10, 18}  # action row (legacy, text inputs only), text display, label
_LABEL_CHILDREN = {3, 4, 5, 6, 7, 8, 19, 21, 22, 23}
_SELECT_TYPES = {3, 5, 6, 7, 8}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _ModalChecker:
    """Walks a modal (callback type 9) and records what Discord answers 400/50035 for.

    Limits from the docs (components/reference) and the OpenAPI spec's ``*ForModalRequest`` schemas:
    title 1-45; 1-5 top-level components; Label label 1-45 and description <= 100; text input
    min_length 0-4000, max_length 1-4000, value <= 4000, placeholder <= 100, label 1-45 if given;
    selects: placeholder <= 150, min_values 0-25, max_values 1-25, min <= max, and for string selects
    1-25 options (label/value 1-100, description <= 100) with max_values <= the number of options;
    "disabled": true is an error in a modal (discord.py sends false, which is accepted); file upload
    min_values 0-10, max_values 1-10; custom_id 1-100 and unique in the modal. Error codes follow
    Discord's style; the exact strings are not all documented.
    """

    def __init__(self) -> None:
        self.errors = FormErrors()
        self.custom_ids: set[str] = set()

    def text(self, path: list[str | int], value: Any, low: int, high: int, *, optional: bool) -> None:
        if value is None and optional:
            return
        if not isinstance(value, str):
            self.errors.add(path, "BASE_TYPE_STRING", "Must be a string.")
        elif not low <= len(value) <= high:
            if low == 0:
                self.errors.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {high} or fewer in length.")
            else:
                self.errors.add(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")

    def number(self, path: list[str | int], value: Any, low: int, high: int) -> int | None:
        if value is None:
            return None
        if not _is_int(value):
            self.errors.add(path, "NUMBER_TYPE_COERCE", f"Value {value!r} is not int.")
            return None
        if value < low:
            self.errors.add(path, "NUMBER_TYPE_MIN", f"Int value should be greater than or equal to {low}.")
            return None
        if value > high:
            self.errors.add(path, "NUMBER_TYPE_MAX", f"Int value should be less than or equal to {high}.")
            return None
        return int(value)

    def custom_id(self, path: list[str | int], component: JSON) -> None:
        custom_id = component.get("custom_id")
        self.text([*path, "custom_id"], custom_id, 1, 100, optional=False)
        if isinstance(custom_id, str):
            if custom_id in self.custom_ids:
                self.errors.add(
                    [*path, "custom_id"], "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id cannot be duplicated"
                )
            self.custom_ids.add(custom_id)

    def top_level(self, path: list[str | int], component: Any) -> None:
        if not isinstance(component, dict):
            self.errors.add(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
            return
        ctype = component.get("type")
        if ctype not in _MODAL_TOP_LEVEL:
            self.errors.add(
                [*path, "type"],
                "UNION_TYPE_CHOICES",
                f'Value of field "type" must be one of {sorted(_MODAL_TOP_LEVEL)}.',
            )
            return
        if ctype == 10:
            self.text([*path, "content"], component.get("content"), 1, 4000, optional=False)
        elif ctype == 18:
            self.text([*path, "label"], component.get("label"), 1, 45, optional=False)
            self.text([*path, "description"], component.get("description"), 0, 100, optional=True)
            child = component.get("component")
            if not isinstance(child, dict) or child.get("type") not in _LABEL_CHILDREN:
                self.errors.add([*path, "component"], "UNION_TYPE_CHOICES", "A label needs one input component.")
            else:
                self.input([*path, "component"], child)
        else:  # action row: text inputs only
            children = component.get("components")
            if not isinstance(children, list) or not 1 <= len(children) <= 5:
                self.errors.add([*path, "components"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
                return
            for index, child in enumerate(children):
                if not isinstance(child, dict) or child.get("type") != 4:
                    self.errors.add([*path, "components", index], "UNION_TYPE_CHOICES", "Only text inputs here.")
                else:
                    self.input([*path, "components", index], child)

    def input(self, path: list[str | int], component: JSON) -> None:
        ctype = component.get("type")
        self.custom_id(path, component)
        if ctype == 4:
            if component.get("style") not in (1, 2):
                self.errors.add([*path, "style"], "BASE_TYPE_CHOICES", "Value must be one of (1, 2).")
            self.text([*path, "label"], component.get("label"), 1, 45, optional=True)
            self.number([*path, "min_length"], component.get("min_length"), 0, 4000)
            self.number([*path, "max_length"], component.get("max_length"), 1, 4000)
            self.text([*path, "value"], component.get("value"), 0, 4000, optional=True)
            self.text([*path, "placeholder"], component.get("placeholder"), 0, 100, optional=True)
        elif ctype in _SELECT_TYPES:
            self.select(path, component)
        elif ctype == 19:
            self.counts(path, component, 10, default_high=1)
        elif ctype == 22:
            high = self.counts(path, component, 10, default_high=None)
            self.options(path, component, 1, 10, high)
        elif ctype == 21:
            self.options(path, component, 2, 10, None)

    def counts(self, path: list[str | int], component: JSON, limit: int, *, default_high: int | None) -> int | None:
        """min_values 0..limit, max_values 1..limit, min <= max (absent: min 1, max ``default_high``).

        Returns the effective max_values (None when unknown or invalid)."""
        raw_low, raw_high = component.get("min_values"), component.get("max_values")
        low = self.number([*path, "min_values"], raw_low, 0, limit)
        high = self.number([*path, "max_values"], raw_high, 1, limit)
        if (raw_low is not None and low is None) or (raw_high is not None and high is None):
            return None
        low = 1 if raw_low is None else low
        high = default_high if raw_high is None else high
        if low is not None and high is not None and low > high:
            self.errors.add(
                [*path, "min_values"], "SELECT_COMPONENT_MIN_VALUES_TOO_LARGE", "min_values exceeds max_values."
            )
        return high

    def select(self, path: list[str | int], component: JSON) -> None:
        disabled = component.get("disabled")
        if disabled is not None and disabled is not False:
            self.errors.add(
                [*path, "disabled"], "COMPONENT_DISABLED_IN_MODAL", "Selects in a modal cannot be disabled."
            )
        self.text([*path, "placeholder"], component.get("placeholder"), 0, 150, optional=True)
        high = self.counts(path, component, 25, default_high=1)
        if component.get("type") == 3:
            self.options(path, component, 1, 25, high)

    def options(self, path: list[str | int], component: JSON, low: int, high: int, max_values: int | None) -> None:
        options = component.get("options")
        if not isinstance(options, list) or not low <= len(options) <= high:
            self.errors.add([*path, "options"], "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")
            return
        for index, option in enumerate(options):
            opath: list[str | int] = [*path, "options", index]
            if not isinstance(option, dict):
                self.errors.add(opath, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
                continue
            self.text([*opath, "label"], option.get("label"), 1, 100, optional=False)
            self.text([*opath, "value"], option.get("value"), 1, 100, optional=False)
            self.text([*opath, "description"], option.get("description"), 0, 100, optional=True)
        if max_values is not None and max_values > len(options):
            self.errors.add(
                [*path, "max_values"],
                "SELECT_COMPONENT_MAX_VALUES_TOO_LARGE",
                f"max_values must be at most the number of options ({len(options)}).",
            )


def validate_modal(data: Any) -> FormErrors:
    """What Discord answers 400 code 50035 for in a MODAL callback's ``data`` (see ``_ModalChecker``)."""
    checker = _ModalChecker()
    errors = checker.errors
    if not isinstance(data, dict):
        errors.add(["data"], "DICT_TYPE_CONVERT", "Must be an object.")
        return errors
    checker.text(["data", "title"], data.get("title"), 1, 45, optional=False)
    checker.text(["data", "custom_id"], data.get("custom_id"), 1, 100, optional=False)
    components = data.get("components")
    if not isinstance(components, list) or not 1 <= len(components) <= 5:
        errors.add(["data", "components"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
        return errors
    for index, component in enumerate(components):
        checker.top_level(["data", "components", index], component)
    return errors


# --------------------------------------------------------------------------------------------------
# Mentions
# --------------------------------------------------------------------------------------------------

_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
_EVERYONE = re.compile(r"@(everyone|here)\b")


def mentioned_ids(content: str) -> tuple[list[str], list[str], bool]:
    users = list(dict.fromkeys(_USER_MENTION.findall(content)))
    roles = list(dict.fromkeys(_ROLE_MENTION.findall(content)))
    return users, roles, bool(_EVERYONE.search(content))


def compute_pings(
    content: str,
    allowed_mentions: JSON | None,
    *,
    mentionable_role_ids: set[str],
    can_mention_everyone: bool,
    replied_user_id: str | None = None,
) -> set[str]:
    """Who this content pings under Discord's allowed_mentions rules.

    Absent ``allowed_mentions``: everything mentioned is parsed. Present: only ``parse`` kinds and the
    listed ``users``/``roles``; a reply pings its author unless ``replied_user`` is false (and it is
    false by default once ``allowed_mentions`` is given). @everyone/@here and non-mentionable roles
    need MENTION_EVERYONE (``can_mention_everyone``).
    """
    users, roles, everyone = mentioned_ids(content)
    if allowed_mentions is None:
        parse = {"users", "roles", "everyone"}
        allowed_users: set[str] = set()
        allowed_roles: set[str] = set()
        replied_user = True
    else:
        parse = set(allowed_mentions.get("parse") or [])
        allowed_users = {str(u) for u in allowed_mentions.get("users") or []}
        allowed_roles = {str(r) for r in allowed_mentions.get("roles") or []}
        replied_user = bool(allowed_mentions.get("replied_user", False))
    pinged: set[str] = set()
    for user_id in users:
        if "users" in parse or user_id in allowed_users:
            pinged.add(user_id)
    for role_id in roles:
        if ("roles" in parse or role_id in allowed_roles) and (role_id in mentionable_role_ids or can_mention_everyone):
            pinged.add(role_id)
    if everyone and "everyone" in parse and can_mention_everyone:
        pinged.add("everyone")
    if replied_user_id is not None and replied_user:
        pinged.add(replied_user_id)
    return pinged


# --------------------------------------------------------------------------------------------------
# Modals
# --------------------------------------------------------------------------------------------------

MODAL_INPUT_TYPES = {3, 4, 5, 6, 7, 8, 19, 21, 22, 23}


def modal_inputs(modal: JSON) -> list[JSON]:
    """The input components of a modal (text inputs, selects, file uploads, radio/checkboxes)."""
    return [c for c in iter_components(modal.get("components") or []) if c.get("type") in MODAL_INPUT_TYPES]


def check_modal_value(component: JSON, value: Any, *, given: bool) -> None:
    """Validate one submitted value the way Discord's modal UI constrains it."""
    ctype = component["type"]
    custom_id = component.get("custom_id")
    required = component.get("required", True)
    if ctype == 4:
        text = "" if value is None else value
        if not isinstance(text, str):
            raise DiscordRejected(f"text input {custom_id!r} takes a string, got {value!r}")
        if required and not text:
            raise DiscordRejected(f"text input {custom_id!r} is required")
        if text:
            min_length = component.get("min_length")
            max_length = component.get("max_length") or 4000
            if min_length is not None and len(text) < min_length:
                raise DiscordRejected(f"text input {custom_id!r} is shorter than min_length={min_length}")
            if len(text) > max_length:
                raise DiscordRejected(f"text input {custom_id!r} is longer than max_length={max_length}")
        return
    if ctype == 23:
        if not isinstance(value if given else False, bool):
            raise DiscordRejected(f"checkbox {custom_id!r} takes a bool")
        return
    if ctype == 21:
        if value is None:
            if required:
                raise DiscordRejected(f"radio group {custom_id!r} is required")
            return
        options = [o.get("value") for o in component.get("options") or []]
        if value not in options:
            raise DiscordRejected(f"radio group {custom_id!r}: {value!r} is not an option")
        return
    values = list(value) if given and value is not None else []
    min_values = component.get("min_values")
    max_values = component.get("max_values")
    min_count = 1 if min_values is None else int(min_values)
    max_count = 1 if max_values is None else int(max_values)
    if not required and not values:
        return
    if required and not values:
        raise DiscordRejected(f"component {custom_id!r} is required")
    if len(values) < min_count:
        raise DiscordRejected(f"component {custom_id!r} needs at least {min_count} value(s)")
    if len(values) > max_count:
        raise DiscordRejected(f"component {custom_id!r} takes at most {max_count} value(s)")
    if ctype in (3, 22):
        options = [o.get("value") for o in component.get("options") or []]
        for item in values:
            if item not in options:
                raise DiscordRejected(f"component {custom_id!r}: {item!r} is not an option")

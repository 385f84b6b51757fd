"""Typed values exchanged with the upstream queue API, and the parsers that build them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.queue.errors import MalformedResponseError

ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
SIZE_TIERS = ("1K", "2K", "4K")
MAX_PROMPT_CHARS = 2500
MAX_REFERENCE_IMAGES = 14


class QueueState(StrEnum):
    """Where a job stands upstream."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (QueueState.SUCCEEDED, QueueState.FAILED, QueueState.CANCELLED)


class ErrorType(StrEnum):
    """The upstream's ``error_type`` of a failed job (``UNKNOWN`` for anything undocumented)."""

    INFERENCE_FAILURE = "INFERENCE_FAILURE"
    INFERENCE_TIMEOUT = "INFERENCE_TIMEOUT"
    REQUEST_INVALID = "REQUEST_INVALID"
    CONTENT_BLOCKED = "CONTENT_BLOCKED"
    CANCELED = "CANCELED"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
    UNKNOWN = "UNKNOWN"
    # Not the upstream's: a job that "completed" without an image and without saying why.
    NO_IMAGE = "NO_IMAGE"

    @classmethod
    def parse(cls, value: object) -> ErrorType:
        text = str(value or "").strip().upper()
        if text == "CANCELLED":
            return cls.CANCELED
        try:
            return cls(text)
        except ValueError:
            return cls.UNKNOWN


class CancelOutcome(StrEnum):
    """The upstream's answer to a cancel."""

    REQUESTED = "requested"  # 202 CANCELLATION_REQUESTED: the job still has to reach a terminal status
    ALREADY_COMPLETED = "already_completed"  # 400: too late
    NOT_FOUND = "not_found"  # 404: unknown request


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """The parameters of one image generation."""

    prompt: str
    image_urls: tuple[str, ...] = ()
    aspect_ratio: str | None = None
    resolution: str = "1K"
    with_text: bool = False

    def to_body(self, size_fields: tuple[str, ...] = ("resolution", "image_size")) -> dict[str, Any]:
        """The JSON body of a submit; the tier goes into every field named in ``size_fields``."""
        body: dict[str, Any] = {"prompt": self.prompt}
        if self.image_urls:
            body["image_urls"] = list(self.image_urls)
        if self.aspect_ratio is not None:
            body["aspect_ratio"] = self.aspect_ratio
        for name in size_fields:
            body[name] = self.resolution
        body["response_modalities"] = ["Text", "Image"] if self.with_text else ["Image"]
        return body


@dataclass(frozen=True, slots=True)
class JobHandle:
    """Everything needed to follow a job; rebuilt from a stored request id after a restart."""

    request_id: str
    status_url: str
    response_url: str
    cancel_url: str


@dataclass(frozen=True, slots=True)
class Submission:
    """The answer to a submit."""

    handle: JobHandle
    queue_position: int | None


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """One status reading."""

    request_id: str
    state: QueueState
    queue_position: int | None = None
    error: str | None = None
    error_type: ErrorType | None = None
    inference_time: float | None = None


@dataclass(frozen=True, slots=True)
class ImageOutput:
    url: str
    content_type: str | None = None
    file_name: str | None = None
    file_size: int | None = None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True, slots=True)
class QueueResult:
    """A finished job: its images and the model's text, or its failure."""

    request_id: str
    images: tuple[ImageOutput, ...]
    texts: tuple[str, ...]
    failure: QueueStatus | None = None

    @property
    def text(self) -> str:
        return "\n\n".join(t for t in self.texts if t.strip())


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _error_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        inner = value.get("message") or value.get("detail")
        return str(inner) if inner is not None else None
    return str(value)


_TERMINAL_WORDS = {
    "COMPLETED": QueueState.SUCCEEDED,
    "SUCCEEDED": QueueState.SUCCEEDED,
    "OK": QueueState.SUCCEEDED,
    "FAILED": QueueState.FAILED,
    "ERROR": QueueState.FAILED,
    "CANCELED": QueueState.CANCELLED,
    "CANCELLED": QueueState.CANCELLED,
}


def parse_status(data: object, request_id: str) -> QueueStatus:
    """Read a status body; ``COMPLETED`` with an ``error_type`` is a failure (or a cancellation)."""
    if not isinstance(data, Mapping):
        raise MalformedResponseError("status answer is not a JSON object", request_id=request_id)
    word = str(data.get("status", "")).strip().upper()
    rid = str(data.get("request_id") or request_id)
    position = _int_or_none(data.get("queue_position"))
    if word in ("IN_QUEUE", "QUEUED", "PENDING"):
        return QueueStatus(rid, QueueState.QUEUED, queue_position=position)
    if word in ("IN_PROGRESS", "RUNNING", "PROCESSING"):
        return QueueStatus(rid, QueueState.RUNNING)
    if word not in _TERMINAL_WORDS:
        raise MalformedResponseError(f"unknown job status {word or '(none)'!r}", request_id=request_id)
    state = _TERMINAL_WORDS[word]
    error = _error_text(data.get("error"))
    raw_type = data.get("error_type")
    error_type = ErrorType.parse(raw_type) if raw_type is not None else None
    if state is QueueState.SUCCEEDED and (error is not None or error_type is not None):
        state = QueueState.FAILED
    if error_type is ErrorType.CANCELED:
        state = QueueState.CANCELLED
    if state is QueueState.FAILED and error_type is None:
        error_type = ErrorType.UNKNOWN
    if state is QueueState.CANCELLED and error_type is None:
        error_type = ErrorType.CANCELED
    metrics = data.get("metrics")
    inference_time = None
    if isinstance(metrics, Mapping) and isinstance(metrics.get("inference_time"), int | float):
        inference_time = float(metrics["inference_time"])
    return QueueStatus(rid, state, error=error, error_type=error_type, inference_time=inference_time)


def _image_from(item: Mapping[str, Any]) -> ImageOutput | None:
    url = item.get("url")
    if not isinstance(url, str) or not url:
        return None
    content_type = item.get("content_type")
    file_name = item.get("file_name")
    return ImageOutput(
        url=url,
        content_type=content_type if isinstance(content_type, str) else None,
        file_name=file_name if isinstance(file_name, str) else None,
        file_size=_int_or_none(item.get("file_size")),
        width=_int_or_none(item.get("width")),
        height=_int_or_none(item.get("height")),
    )


def parse_result(data: object, request_id: str) -> QueueResult:
    """Read a result body in either the ``outputs[]`` or the ``images[]`` shape.

    A body that is status-shaped and reports a failure gives a result with ``failure`` set, and so
    does one that finished without any image and without an error (``NO_IMAGE``): there is nothing
    to wait for, so it must end the job rather than be read as a success.
    """
    if not isinstance(data, Mapping):
        raise MalformedResponseError("result answer is not a JSON object", request_id=request_id)
    rid = str(data.get("request_id") or request_id)
    if "outputs" not in data and "images" not in data and ("error_type" in data or "error" in data):
        failure = parse_status({"status": data.get("status", "COMPLETED"), **data}, rid)
        if failure.state is QueueState.SUCCEEDED:
            failure = _no_image(rid)
        return QueueResult(rid, (), (), failure=failure)
    images: list[ImageOutput] = []
    texts: list[str] = []
    outputs = data.get("outputs")
    if isinstance(outputs, list):
        for item in outputs:
            if not isinstance(item, Mapping):
                continue
            kind = str(item.get("type", "")).lower()
            if kind == "text" or (not kind and isinstance(item.get("text"), str)):
                if isinstance(item.get("text"), str):
                    texts.append(item["text"])
            elif image := _image_from(item):
                images.append(image)
    legacy = data.get("images")
    if isinstance(legacy, list):
        images.extend(img for item in legacy if isinstance(item, Mapping) and (img := _image_from(item)))
    for key in ("description", "text"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            texts.append(value)
    if not images:
        return QueueResult(rid, (), tuple(texts), failure=_no_image(rid))
    return QueueResult(rid, tuple(images), tuple(texts))


def _no_image(request_id: str) -> QueueStatus:
    return QueueStatus(request_id, QueueState.FAILED, error="no image returned", error_type=ErrorType.NO_IMAGE)

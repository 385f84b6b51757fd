"""OdiRouter queue API: typed client, models and errors."""

from bot.queue.client import QueueClient, ResultTooLargeError
from bot.queue.errors import (
    AuthenticationError,
    InsufficientBalanceError,
    InvalidRequestError,
    MalformedResponseError,
    NotFoundError,
    QueueError,
    RateLimitedError,
    SubmitUncertainError,
    UpstreamUnavailableError,
)
from bot.queue.health import UpstreamFailure, UpstreamHealth
from bot.queue.models import (
    ASPECT_RATIOS,
    MAX_PROMPT_CHARS,
    MAX_REFERENCE_IMAGES,
    SIZE_TIERS,
    CancelOutcome,
    ErrorType,
    GenerationRequest,
    ImageOutput,
    JobHandle,
    QueueResult,
    QueueState,
    QueueStatus,
    Submission,
)
from bot.queue.retry import RetryPolicy

__all__ = [
    "ASPECT_RATIOS",
    "MAX_PROMPT_CHARS",
    "MAX_REFERENCE_IMAGES",
    "SIZE_TIERS",
    "AuthenticationError",
    "CancelOutcome",
    "ErrorType",
    "GenerationRequest",
    "ImageOutput",
    "InsufficientBalanceError",
    "InvalidRequestError",
    "JobHandle",
    "MalformedResponseError",
    "NotFoundError",
    "QueueClient",
    "QueueError",
    "QueueResult",
    "QueueState",
    "QueueStatus",
    "RateLimitedError",
    "ResultTooLargeError",
    "RetryPolicy",
    "Submission",
    "SubmitUncertainError",
    "UpstreamFailure",
    "UpstreamHealth",
    "UpstreamUnavailableError",
]

"""batgate's Python SDK: `Client` and `AsyncClient` for batgate or any SMSBAT-compatible API.

    from batgate.client import Client

    with Client("http://127.0.0.1:8000", api_key="…", sender="MyShop") as client:
        entry = client.send_sms("+380501234567", "Order #1001 confirmed")
        status = client.wait_for_delivery(entry.message_id, timeout=60)
        print(status.status, status.cost)

Both clients run the same operations (`batgate.client.core`); see docs/sdk.md.
"""

from batgate.client.aio import AsyncClient
from batgate.client.cache import StatusCache
from batgate.client.errors import (
    AuthenticationError,
    BatgateError,
    DeliveryTimeoutError,
    IdempotencyKeyReusedError,
    MessageRejectedError,
    NetworkError,
    NotCancellableError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    TimeoutError,
    ValidationError,
)
from batgate.client.messages import (
    Button,
    CarouselItem,
    Message,
    MessageType,
    RcsButton,
    flashcall,
    rcs,
    sms,
    viber_carousel,
    viber_otp,
    viber_promo,
    viber_survey,
    viber_trans,
)
from batgate.client.models import (
    ChannelStatus,
    DeliveryStatus,
    FallbackStatus,
    InboundMessage,
    InboundPage,
    MessagelistPage,
    MessagelistReport,
    MessageStatus,
    SendEntry,
    SendResult,
    StatusResult,
)
from batgate.client.retry import PollPolicy, RateLimiter, Retries
from batgate.client.sync import Client
from batgate.client.webhooks import (
    WebhookEvent,
    WebhookVerificationError,
    parse_webhook,
    verify_webhook,
)

__all__ = [
    "AsyncClient",
    "AuthenticationError",
    "BatgateError",
    "Button",
    "CarouselItem",
    "ChannelStatus",
    "Client",
    "DeliveryStatus",
    "DeliveryTimeoutError",
    "FallbackStatus",
    "IdempotencyKeyReusedError",
    "InboundMessage",
    "InboundPage",
    "Message",
    "MessageRejectedError",
    "MessageStatus",
    "MessageType",
    "MessagelistPage",
    "MessagelistReport",
    "NetworkError",
    "NotCancellableError",
    "NotFoundError",
    "PollPolicy",
    "ProtocolError",
    "RateLimitedError",
    "RateLimiter",
    "RcsButton",
    "RequestTimeoutError",
    "Retries",
    "SendEntry",
    "SendResult",
    "ServerError",
    "StatusCache",
    "StatusResult",
    "TimeoutError",
    "ValidationError",
    "WebhookEvent",
    "WebhookVerificationError",
    "flashcall",
    "parse_webhook",
    "rcs",
    "sms",
    "verify_webhook",
    "viber_carousel",
    "viber_otp",
    "viber_promo",
    "viber_survey",
    "viber_trans",
]

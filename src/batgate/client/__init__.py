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
    MessagelistPage,
    MessagelistReport,
    MessageStatus,
    SendEntry,
    SendResult,
    StatusResult,
)
from batgate.client.retry import PollPolicy, RateLimiter, Retries
from batgate.client.sync import Client

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
    "Message",
    "MessageRejectedError",
    "MessageStatus",
    "MessageType",
    "MessagelistPage",
    "MessagelistReport",
    "NetworkError",
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
    "flashcall",
    "rcs",
    "sms",
    "viber_carousel",
    "viber_otp",
    "viber_promo",
    "viber_survey",
    "viber_trans",
]

"""Pydantic models that document the wire format in the OpenAPI document.

The hot paths don't parse or serialise through them (see api/send.py and
api/status.py); they exist so `/openapi.json` and `/docs` describe the contract.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ErrorDetail(BaseModel):
    code: str = Field(examples=["INVALID_REQUEST"])
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class MessageIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")

    from_: str = Field(alias="from", examples=["MyShop"])
    to: str = Field(examples=["+380501234567"])
    type: Literal[
        "sms",
        "viber_promo",
        "viber_trans",
        "viber_carousel",
        "viber_survey",
        "viber_otp",
        "rcs",
        "flashcall",
    ]
    text: str | None = None
    customerMessageId: str | None = Field(default=None, max_length=64)
    ttl: int | None = Field(default=None, ge=1, le=2_592_000)
    messageData: dict[str, Any] | None = None
    fallback: dict[str, Any] | list[dict[str, Any]] | None = None
    callbackUrl: str | None = None


class SendRequest(BaseModel):
    messages: list[MessageIn]


class SendEntry(BaseModel):
    messageId: str | None
    status: Literal["accepted", "rejected"]
    parts: int | None = None
    customerMessageId: str | None = None
    to: str | None = None
    error: ErrorDetail | None = None
    callerId: str | None = None
    pattern: str | None = None
    ttl: int | None = None


class SendResponse(BaseModel):
    messagelistId: int
    messages: list[SendEntry]


class FallbackStatus(BaseModel):
    type: str
    status: str


class StatusResponse(BaseModel):
    messagelistId: int
    messageId: str
    deliverystatus: Literal[
        "scheduled", "processing", "delivered", "undeliverable", "permanenterror"
    ]
    partscount: int
    cost: float | None = Field(default=None, description="present once the status is final")
    customerMessageId: str | None = None
    type: str | None = None
    to: str | None = None
    fallbacks: list[FallbackStatus] | None = None
    extendedStatuses: dict[str, str] | None = None
    rate: float | None = None
    rateAmount: float | None = None
    rateCurrency: str | None = None
    billAmount: float | None = None
    billCurrency: str | None = None


class MessageListSummary(BaseModel):
    messagelistId: int
    total: int
    counts: dict[str, int] = Field(description="messages per deliverystatus, every status")
    cost: float = Field(description="billed so far, in `currency`")
    currency: str
    deliveryRate: float = Field(ge=0, le=1, description="delivered / total; 0 for no messages")
    messages: list[StatusResponse] = Field(
        description="this page: the documents `GET /bat/message/{id}` answers, in id order"
    )
    nextCursor: str | None = Field(description="`cursor` of the next page; null on the last")


class StatusesRequest(BaseModel):
    messageIds: list[str] = Field(min_length=1, max_length=1000, examples=[["abc123def456"]])


class StatusError(BaseModel):
    messageId: str
    error: ErrorDetail = Field(examples=[{"code": "NOT_FOUND", "message": "no message with id"}])


class StatusesResponse(BaseModel):
    messages: list[StatusResponse | StatusError] = Field(
        description="one per requested id, in request order (duplicates included)"
    )


# The query of `GET /bat/messagelist/{id}`; the route reads it itself, to answer a bad
# value with 422 (api/reports.py), so FastAPI documents it from here.
PAGE_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "messages per page",
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
    },
    {
        "name": "cursor",
        "in": "query",
        "required": False,
        "description": "the `nextCursor` of the previous page; none for the first",
        "schema": {"type": "string"},
    },
]


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody} for status in statuses}

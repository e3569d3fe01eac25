"""Requests to forget: PhotoDeleted and UserErased, sent to the uploads topic keyed by user id.

They ride the uploads topic, not one of their own, so that on a partition a request comes after
every upload it concerns and the worker applies both in that order (schemas/README.md,
"Forgetting"). What the worker does with them: streams/worker/forgetting.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from streams.contracts.codec import Codec
from streams.contracts.events import new_photo_deleted, new_user_erased
from streams.contracts.schemas import EventType
from streams.errors import OperationError


@dataclass(frozen=True)
class Request:
    """One request to forget: a photo of a user, or (``photo_id`` None) the whole user."""

    event_type: EventType
    record: dict[str, Any]

    @property
    def user_id(self) -> str:
        return str(self.record["user_id"])

    @property
    def photo_id(self) -> str | None:
        found = self.record.get("photo_id")
        return None if found is None else str(found)


@dataclass(frozen=True)
class Sent:
    """A request the broker acknowledged, and where it is."""

    request: Request
    partition: int
    offset: int


def requests_for(user_id: str, photo_ids: list[str], reason: str) -> list[Request]:
    """A PhotoDeleted per photo of ``photo_ids``, or one UserErased when there are none."""
    if not user_id:
        raise ValueError("the user id must not be empty")
    if not photo_ids:
        return [Request(EventType.USER_ERASED, new_user_erased(user_id=user_id, reason=reason))]
    return [
        Request(
            EventType.PHOTO_DELETED,
            new_photo_deleted(user_id=user_id, photo_id=photo, reason=reason),
        )
        for photo in dict.fromkeys(photo_ids)  # each photo once, in the order given
    ]


def send(
    producer: Producer, codec: Codec, topic: str, requests: list[Request], timeout_s: float
) -> list[Sent]:
    """Send ``requests`` in order (one partition: the user's) and wait for every
    acknowledgement; OperationError naming the first refusal, or what was not acknowledged in
    ``timeout_s``."""
    sent: list[Sent] = []
    errors: list[str] = []

    def delivered(request: Request) -> Any:
        def report(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                errors.append(f"{request.event_type} {request.record['event_id']}: {err.str()}")
                return
            partition, offset = msg.partition(), msg.offset()
            assert partition is not None and offset is not None  # set on every delivery
            sent.append(Sent(request, partition, offset))

        return report

    for request in requests:
        producer.produce(
            topic,
            key=request.user_id.encode(),
            value=codec.encode(request.event_type, request.record),
            on_delivery=delivered(request),
        )
    deadline = time.monotonic() + timeout_s
    while len(sent) + len(errors) < len(requests) and time.monotonic() < deadline:
        producer.flush(0.2)
    if errors:
        raise OperationError(f"{len(errors)} request(s) not delivered; first: {errors[0]}")
    if len(sent) < len(requests):
        raise OperationError(
            f"{len(requests) - len(sent)} request(s) not acknowledged within {timeout_s:g} s"
        )
    return sorted(sent, key=lambda s: s.offset)

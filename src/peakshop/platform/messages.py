"""Integration events as they travel: an envelope with an id consumers deduplicate on."""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgspec


class Envelope(msgspec.Struct, frozen=True):
    id: str
    topic: str
    occurred_at: float
    payload: bytes

    @classmethod
    def wrap(cls, topic: str, event: Any) -> Envelope:
        return cls(uuid.uuid4().hex, topic, time.time(), msgspec.json.encode(event))

    def decode(self, type_: type[Any]) -> Any:
        return msgspec.json.decode(self.payload, type=type_)


encode_envelope = msgspec.msgpack.Encoder().encode
decode_envelope = msgspec.msgpack.Decoder(Envelope).decode

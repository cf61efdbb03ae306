"""Types every contract shares."""

from __future__ import annotations

import msgspec


class Document(msgspec.Struct, frozen=True):
    """A JSON body already encoded, with its entity tag: read paths pass it through untouched."""

    body: bytes
    etag: str

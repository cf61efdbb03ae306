"""What the users service answers and accepts."""

from __future__ import annotations

from typing import Annotated

import msgspec

Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Password = Annotated[str, msgspec.Meta(min_length=8, max_length=256)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class NewAccount(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    email: Email
    password: Password
    name: Name


class Credentials(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(min_length=1, max_length=254)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class Account(msgspec.Struct, frozen=True):
    id: str
    email: str
    name: str
    created_at: float


class Session(msgspec.Struct, frozen=True):
    token: str
    account: Account
    expires_at: float


class NewAddress(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Name
    line1: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    city: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    postal_code: Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
    country: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")]
    line2: Annotated[str, msgspec.Meta(max_length=200)] = ""
    phone: Annotated[str, msgspec.Meta(max_length=40)] = ""


class Address(msgspec.Struct, frozen=True):
    id: str
    name: str
    line1: str
    line2: str
    city: str
    postal_code: str
    country: str
    phone: str


class AccountRegistered(msgspec.Struct, frozen=True):
    account_id: str
    email: str


TOPIC_ACCOUNT_REGISTERED = "users.account_registered"

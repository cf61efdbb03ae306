"""The users service's internal HTTP API, served under `/internal/users` to the other services."""

from __future__ import annotations

from typing import Annotated

from litestar import Router, delete, get, post
from litestar.params import HeaderParameter, JSONBody

from peakshop.contracts.users import Account, Address, Credentials, NewAccount, NewAddress, Session
from peakshop.users.domain import bearer_token
from peakshop.users.handlers import UsersHandlers

PREFIX = "/internal/users"
# The storefront passes on the shopper's address, which per-client log-in limits count by.
CLIENT_IP_HEADER = "x-peakshop-client-ip"

ClientIp = Annotated[str, HeaderParameter(name=CLIENT_IP_HEADER, min_length=1, max_length=256)]
Authorization = Annotated[str | None, HeaderParameter(name="authorization")]


def create_router(handlers: UsersHandlers) -> Router:
    @post("/accounts", status_code=201)
    async def register(data: JSONBody[NewAccount]) -> Account:
        return await handlers.register(data)

    @post("/sessions", status_code=201)
    async def log_in(data: JSONBody[Credentials], client_ip: ClientIp) -> Session:
        return await handlers.log_in(data, client_ip)

    @delete("/sessions", status_code=204)
    async def log_out(authorization: Authorization = None) -> None:
        await handlers.log_out(bearer_token(authorization))

    @get("/me")
    async def me(authorization: Authorization = None) -> Account:
        return await handlers.me(bearer_token(authorization))

    @get("/me/addresses")
    async def addresses(authorization: Authorization = None) -> list[Address]:
        return await handlers.addresses(bearer_token(authorization))

    @post("/me/addresses", status_code=201)
    async def add_address(data: JSONBody[NewAddress], authorization: Authorization = None) -> Address:
        return await handlers.add_address(bearer_token(authorization), data)

    return Router(
        path=PREFIX,
        route_handlers=[register, log_in, log_out, me, addresses, add_address],
        opt={"service": "users"},
        include_in_schema=False,
    )

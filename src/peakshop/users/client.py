"""How other services reach users: in-process or over HTTP, with the same calls and the same problems."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from peakshop.contracts.users import Account, Address, Credentials, NewAccount, NewAddress, Session
from peakshop.platform.http_client import ServiceHttpClient
from peakshop.users.api import CLIENT_IP_HEADER, PREFIX
from peakshop.users.handlers import UsersHandlers

T = TypeVar("T")


class UsersClient(Protocol):
    async def register(self, new: NewAccount) -> Account: ...
    async def log_in(self, credentials: Credentials, client_ip: str) -> Session: ...
    async def log_out(self, token: str) -> None: ...
    async def me(self, token: str) -> Account: ...
    async def add_address(self, token: str, new: NewAddress) -> Address: ...
    async def addresses(self, token: str) -> list[Address]: ...
    async def authenticate(self, token: str) -> Account:
        """The account behind a shopper's bearer token (cart and orders call this per request)."""
        ...


class LocalUsersClient:
    """Calls the users handlers in this process."""

    def __init__(self, handlers: UsersHandlers) -> None:
        self._handlers = handlers

    async def register(self, new: NewAccount) -> Account:
        return await self._handlers.register(new)

    async def log_in(self, credentials: Credentials, client_ip: str) -> Session:
        return await self._handlers.log_in(credentials, client_ip)

    async def log_out(self, token: str) -> None:
        await self._handlers.log_out(token)

    async def me(self, token: str) -> Account:
        return await self._handlers.me(token)

    async def add_address(self, token: str, new: NewAddress) -> Address:
        return await self._handlers.add_address(token, new)

    async def addresses(self, token: str) -> list[Address]:
        return await self._handlers.addresses(token)

    async def authenticate(self, token: str) -> Account:
        return await self._handlers.authenticate(token)


class HttpUsersClient:
    """Calls the users service's internal API over HTTP."""

    def __init__(self, http: ServiceHttpClient) -> None:
        self._http = http

    async def start(self) -> None:
        await self._http.start()

    async def close(self) -> None:
        await self._http.close()

    async def _call(self, method: str, path: str, type_: Any, **kwargs: Any) -> Any:
        return await self._http.call(method, PREFIX + path, type_, **kwargs)

    @staticmethod
    def _bearer(token: str) -> dict[str, str]:
        return {"authorization": f"Bearer {token}"}

    async def register(self, new: NewAccount) -> Account:
        account: Account = await self._call("POST", "/accounts", Account, body=new)
        return account

    async def log_in(self, credentials: Credentials, client_ip: str) -> Session:
        session: Session = await self._call(
            "POST", "/sessions", Session, body=credentials, headers={CLIENT_IP_HEADER: client_ip}
        )
        return session

    async def log_out(self, token: str) -> None:
        await self._call("DELETE", "/sessions", type(None), headers=self._bearer(token))

    async def me(self, token: str) -> Account:
        account: Account = await self._call("GET", "/me", Account, headers=self._bearer(token))
        return account

    async def add_address(self, token: str, new: NewAddress) -> Address:
        address: Address = await self._call(
            "POST", "/me/addresses", Address, body=new, headers=self._bearer(token)
        )
        return address

    async def addresses(self, token: str) -> list[Address]:
        found: list[Address] = await self._call(
            "GET", "/me/addresses", list[Address], headers=self._bearer(token)
        )
        return found

    async def authenticate(self, token: str) -> Account:
        return await self.me(token)

"""RFC 9457 problem details: the one shape every client mistake and server fault takes."""

from __future__ import annotations

from typing import Any

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://peakshop.dev/problems/"


class Problem(Exception):
    """An error the caller can act on; raised anywhere, rendered as problem+json at the edge."""

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        slug: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        if slug is not None:
            self.slug = slug
        if title is not None:
            self.title = title
        self.headers = headers or {}
        self.extra = extra

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug

    def to_dict(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body

    @classmethod
    def from_dict(cls, body: dict[str, Any], headers: dict[str, str] | None = None) -> Problem:
        """Rebuild a problem received over HTTP, so remote and local clients raise the same thing."""
        known = {"type", "title", "status", "detail", "instance"}
        slug = str(body.get("type", "")).removeprefix(PROBLEM_BASE) or "bad-request"
        extra = {k: v for k, v in body.items() if k not in known}
        return cls(
            str(body.get("detail", "")),
            status=int(body.get("status", 500)),
            slug=slug,
            title=str(body.get("title", "")),
            headers=headers,
            **extra,
        )

    def __repr__(self) -> str:
        return f"Problem({self.status}, {self.slug!r}, {self.detail!r})"


class InvalidInput(Problem):
    status = 400
    slug = "invalid-request"
    title = "The request is not valid"


class NotFound(Problem):
    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(Problem):
    status = 409
    slug = "conflict"
    title = "Conflict"


class Unauthorized(Problem):
    status = 401
    slug = "unauthorized"
    title = "Authentication required"


class TooManyRequests(Problem):
    status = 429
    slug = "too-many-requests"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, **extra: Any) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)}, retry_after=retry_after, **extra)


class Unavailable(Problem):
    status = 503
    slug = "unavailable"
    title = "Service unavailable"

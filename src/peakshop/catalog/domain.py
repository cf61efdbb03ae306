"""The catalog's rules in plain Python: slugs, prices, search terms, cursors and entity tags.

Nothing here knows about HTTP, SQL drivers or the web framework; the handlers and the repository use
these rules, and the unit tests check them without any I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from peakshop.platform.problems import InvalidInput, Problem

MAX_LIMIT = 100
DEFAULT_LIMIT = 20
MAX_QUERY_LENGTH = 200
MAX_TERMS = 16
MAX_TERM_LENGTH = 64
MAX_CURSOR_LENGTH = 512
MAX_ID_LENGTH = 64
MAX_SKUS_PER_PRICE_REQUEST = 500
MIN_PRICE = 1
MAX_PRICE = 100_000_000  # one million in a two-decimal currency
CURRENCIES = frozenset({"USD", "EUR", "GBP"})

# A strong entity tag is a quoted 32-hex-digit digest: fixed length, so a cached value can carry it as
# a prefix of the body and be split without parsing.
ETAG_LENGTH = 34


class InvalidCursor(Problem):
    status = 400
    slug = "invalid-cursor"
    title = "The pagination cursor is not valid"

    def __init__(self, detail: str = "The cursor is malformed or belongs to another query.") -> None:
        super().__init__(detail, field="cursor")


# --- slugs ------------------------------------------------------------------------------------------

_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def slugify(text: str) -> str:
    """`"Café Chairs & Stools"` → `"cafe-chairs-stools"`: lowercase ASCII words joined by hyphens."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _NOT_SLUG.sub("-", ascii_text.lower()).strip("-")


def is_slug(text: str) -> bool:
    return len(text) <= 200 and _SLUG.match(text) is not None


# --- prices -----------------------------------------------------------------------------------------


def validate_price(price: object) -> int:
    """A price is a whole number of minor units (cents) within the shop's bounds."""
    if isinstance(price, bool) or not isinstance(price, int):
        raise InvalidInput("price must be a whole number of minor units (cents)", field="price")
    if not MIN_PRICE <= price <= MAX_PRICE:
        raise InvalidInput(f"price must be between {MIN_PRICE} and {MAX_PRICE} minor units", field="price")
    return price


def validate_currency(currency: str) -> str:
    if currency not in CURRENCIES:
        raise InvalidInput(f"currency {currency!r} is not one the shop sells in", field="currency")
    return currency


def sku_display_name(product_name: str, attributes: dict[str, str]) -> str:
    """What a cart line shows: `"Aurora Wool Sweater (M, Navy)"`."""
    if not attributes:
        return product_name
    return f"{product_name} ({', '.join(attributes[k] for k in sorted(attributes))})"


# --- listing input ----------------------------------------------------------------------------------


def validate_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    return limit


def validate_query(q: str | None) -> str | None:
    """`None` or blank means browse; anything longer than the bound is refused."""
    if q is None:
        return None
    if len(q) > MAX_QUERY_LENGTH:
        raise InvalidInput(f"q must be at most {MAX_QUERY_LENGTH} characters", field="q")
    return q if q.strip() else None


# Letters and digits only: every quote, operator, bracket, colon, star and NUL byte a user types is a
# separator, so no input can reach the full-text engine as syntax.
_WORD = re.compile(r"[^\W_]+")


def search_terms(q: str) -> list[str]:
    """The distinct lowercase words of a search, in order, bounded in number and length."""
    terms: list[str] = []
    for word in _WORD.findall(q.lower()):
        term = word[:MAX_TERM_LENGTH]
        if term not in terms:
            terms.append(term)
            if len(terms) == MAX_TERMS:
                break
    return terms


# Search means the same on both engines: every term must start a word of the product (a prefix
# match, so "shirt" finds "shirts"), with no stemming and no stop words, which the two engines would
# each do their own way. Relevance has two tiers, also computed alike: all terms in the name first,
# then matches through the description.


def fts5_query(terms: list[str], *, name_only: bool = False) -> str:
    """An FTS5 MATCH expression that ANDs the terms as quoted prefixes (never as syntax)."""
    expression = " ".join(f'"{term}"*' for term in terms)
    return f"name : ({expression})" if name_only else expression


def tsquery_text(terms: list[str], *, name_only: bool = False) -> str:
    """A `to_tsquery('simple', …)` expression: the terms as ANDed prefixes, optionally of the name."""
    # Terms are letters and digits only (see `search_terms`), so none can be tsquery syntax.
    weight = "A" if name_only else ""
    return " & ".join(f"{term}:*{weight}" for term in terms)


# --- cursors ----------------------------------------------------------------------------------------

CursorKind = Literal["browse", "search"]
_CURSOR_VERSION = b"\x01"
_CURSOR_DIGEST = 8


@dataclass(frozen=True, slots=True)
class BrowseKey:
    """Position after a product in browse order: by name, then id."""

    name: str
    id: str


@dataclass(frozen=True, slots=True)
class SearchKey:
    """Position after a product in search order: by score (best first, lower is better), then id."""

    score: float
    id: str


def cursor_context(kind: CursorKind, category_id: str | None, terms: list[str] | None) -> bytes:
    """What a cursor is bound to: a cursor of one query is refused by another."""
    return "\x00".join((kind, category_id or "", " ".join(terms or ()))).encode()


def _digest(payload: bytes, context: bytes) -> bytes:
    return hashlib.blake2b(
        context + b"\xff" + payload, digest_size=_CURSOR_DIGEST, person=b"peakshop-cursor"
    ).digest()


def encode_cursor(key: BrowseKey | SearchKey, context: bytes) -> str:
    """An opaque url-safe token: version, JSON of the key, and a digest over key and query."""
    fields: list[object] = ["b", key.name, key.id] if isinstance(key, BrowseKey) else ["s", key.score, key.id]
    payload = json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()
    raw = _CURSOR_VERSION + payload + _digest(payload, context)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(token: str, kind: CursorKind, context: bytes) -> BrowseKey | SearchKey:
    """The key inside `token`, or `InvalidCursor` if it was garbled, forged or made for another query."""
    if not token or len(token) > MAX_CURSOR_LENGTH:
        raise InvalidCursor()
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii") + b"=" * (-len(token) % 4))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise InvalidCursor() from None
    if len(raw) <= 1 + _CURSOR_DIGEST or raw[:1] != _CURSOR_VERSION:
        raise InvalidCursor()
    payload, digest = raw[1:-_CURSOR_DIGEST], raw[-_CURSOR_DIGEST:]
    if not hmac.compare_digest(digest, _digest(payload, context)):
        raise InvalidCursor()
    try:
        fields = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise InvalidCursor() from None
    # The digest is not a secret, so a hand-made cursor can pass it: check the shape as well.
    if not isinstance(fields, list) or len(fields) != 3:
        raise InvalidCursor()
    tag, value, key_id = fields
    if not isinstance(key_id, str) or not 0 < len(key_id) <= MAX_ID_LENGTH:
        raise InvalidCursor()
    if kind == "browse" and tag == "b" and isinstance(value, str) and len(value) <= 1000:
        return BrowseKey(value, key_id)
    if (
        kind == "search"
        and tag == "s"
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    ):
        return SearchKey(float(value), key_id)
    raise InvalidCursor()


def decode_browse_cursor(token: str, context: bytes) -> BrowseKey:
    key = decode_cursor(token, "browse", context)
    if not isinstance(key, BrowseKey):
        raise InvalidCursor()
    return key


def decode_search_cursor(token: str, context: bytes) -> SearchKey:
    key = decode_cursor(token, "search", context)
    if not isinstance(key, SearchKey):
        raise InvalidCursor()
    return key


# --- entity tags ------------------------------------------------------------------------------------


def entity_tag(body: bytes) -> str:
    """A strong ETag: the same body always gets the same tag, any change gets another."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


# --- records the catalog is imported from -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CategoryRecord:
    id: str
    slug: str
    name: str
    parent_id: str | None


@dataclass(frozen=True, slots=True)
class ProductRecord:
    id: str
    slug: str
    name: str
    description: str
    category_id: str
    created_at: float


@dataclass(frozen=True, slots=True)
class SkuRecord:
    id: str
    code: str
    product_id: str
    attributes: dict[str, str]
    price: int
    currency: str

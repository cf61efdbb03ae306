import base64
import json

import pytest

from peakshop.catalog.api import etag_matches
from peakshop.catalog.domain import (
    MAX_TERMS,
    BrowseKey,
    InvalidCursor,
    SearchKey,
    cursor_context,
    decode_browse_cursor,
    decode_search_cursor,
    encode_cursor,
    entity_tag,
    fts5_query,
    is_slug,
    search_terms,
    slugify,
    tsquery_text,
    validate_limit,
    validate_price,
    validate_query,
)
from peakshop.platform.problems import InvalidInput

BROWSE = cursor_context("browse", None, None)
SEARCH = cursor_context("search", "c_laptops", ["oak", "bench"])


def test_a_browse_cursor_round_trips() -> None:
    key = BrowseKey("Zürich “Quoted” Lamp", "p_000123")
    assert decode_browse_cursor(encode_cursor(key, BROWSE), BROWSE) == key


def test_a_search_cursor_round_trips_its_score_exactly() -> None:
    key = SearchKey(-1.9642857142857144e-06, "p_000007")
    decoded = decode_search_cursor(encode_cursor(key, SEARCH), SEARCH)
    assert decoded == key


def test_cursors_are_url_safe() -> None:
    token = encode_cursor(BrowseKey("a/b+c?d=e&f", "p_1"), BROWSE)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "x",
        "!!!!",
        "AAAA",
        "=" * 8,
        "é",
        "a" * 600,
        "bnVsbA",
        base64.urlsafe_b64encode(b"\x01[]").decode(),
    ],
)
def test_garbled_cursors_are_refused(token: str) -> None:
    with pytest.raises(InvalidCursor) as refused:
        decode_browse_cursor(token, BROWSE)
    assert refused.value.status == 400
    assert refused.value.to_dict()["field"] == "cursor"


def test_a_tampered_cursor_is_refused() -> None:
    token = encode_cursor(BrowseKey("Lamp", "p_000001"), BROWSE)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[3] ^= 0x01
    forged = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    with pytest.raises(InvalidCursor):
        decode_browse_cursor(forged, BROWSE)


def test_a_cursor_of_another_query_is_refused() -> None:
    browse_token = encode_cursor(BrowseKey("Lamp", "p_000001"), BROWSE)
    with pytest.raises(InvalidCursor):
        decode_browse_cursor(browse_token, cursor_context("browse", "c_laptops", None))
    with pytest.raises(InvalidCursor):
        decode_search_cursor(browse_token, cursor_context("search", None, None))
    search_token = encode_cursor(SearchKey(-1.0, "p_1"), SEARCH)
    with pytest.raises(InvalidCursor):
        decode_search_cursor(search_token, cursor_context("search", "c_laptops", ["oak"]))


def test_a_well_signed_cursor_of_the_wrong_shape_is_refused() -> None:
    # The digest is not secret: someone can compute it, so the content is checked as well.
    from peakshop.catalog import domain

    for fields in (["b", 1, "p_1"], ["s", "x", "p_1"], ["b", "Lamp", ""], ["b", "Lamp"], {"b": 1}):
        payload = json.dumps(fields).encode()
        raw = b"\x01" + payload + domain._digest(payload, BROWSE)
        token = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        with pytest.raises(InvalidCursor):
            decode_browse_cursor(token, BROWSE)


@pytest.mark.parametrize(
    "q",
    [
        '"',
        "'; DROP TABLE catalog.products; --",
        "laptop*",
        "NEAR(a b, 3)",
        "a OR b AND NOT c",
        "-laptop",
        "(((",
        "name:laptop",
        "lap\x00top",
        "^ + { } [ ] \\ | ~ ` &",
        "\u202e\ufeff",
    ],
)
def test_search_terms_are_plain_words_whatever_is_typed(q: str) -> None:
    terms = search_terms(q)
    assert all(term.isalnum() for term in terms)
    expression = fts5_query(terms)
    assert expression == " ".join(f'"{t}"*' for t in terms)
    assert "\x00" not in expression
    assert tsquery_text(terms, name_only=True) == " & ".join(f"{t}:*A" for t in terms)


def test_search_terms_are_lowercase_distinct_and_bounded() -> None:
    assert search_terms("Oak oak OAK bench") == ["oak", "bench"]
    assert len(search_terms(" ".join(f"w{i}" for i in range(100)))) == MAX_TERMS
    assert search_terms("Café crème") == ["café", "crème"]


def test_limit_bounds_name_the_field() -> None:
    assert validate_limit(1) == 1
    assert validate_limit(100) == 100
    for bad in (0, 101, -5):
        with pytest.raises(InvalidInput) as refused:
            validate_limit(bad)
        assert refused.value.to_dict()["field"] == "limit"


def test_a_long_query_is_refused_and_a_blank_one_means_browse() -> None:
    assert validate_query("x" * 200) == "x" * 200
    assert validate_query("   ") is None
    with pytest.raises(InvalidInput):
        validate_query("x" * 201)


def test_prices_are_whole_positive_minor_units() -> None:
    assert validate_price(199) == 199
    for bad in (0, -1, 100_000_001, 1.5, True, "100"):
        with pytest.raises(InvalidInput):
            validate_price(bad)


def test_slugs_are_lowercase_ascii_words() -> None:
    assert slugify("Café Chairs & Stools") == "cafe-chairs-stools"
    assert slugify("  Home & Kitchen ") == "home-kitchen"
    assert is_slug("home-kitchen")
    assert not is_slug("Home Kitchen")


def test_entity_tags_are_strong_and_follow_the_body() -> None:
    tag = entity_tag(b'{"a":1}')
    assert tag == entity_tag(b'{"a":1}')
    assert tag != entity_tag(b'{"a":2}')
    assert tag.startswith('"') and tag.endswith('"') and len(tag) == 34


def test_if_none_match_uses_weak_comparison() -> None:
    tag = b'"abc"'
    assert etag_matches(b'"abc"', tag)
    assert etag_matches(b'W/"abc"', tag)
    assert etag_matches(b'"x", "abc"', tag)
    assert etag_matches(b"*", tag)
    assert not etag_matches(b'"abcd"', tag)

"""Request bodies of the catalog's internal API: what a caller asks the catalog to do."""

from __future__ import annotations

import msgspec


class PriceSkus(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Price these SKUs now (for a cart or an order), in the order given (bounds: the handler)."""

    sku_ids: list[str]


class ChangePrice(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Set one SKU's price, in minor units of the SKU's currency."""

    price: int

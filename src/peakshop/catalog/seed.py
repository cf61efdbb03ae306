"""A deterministic synthetic catalog: the same products, SKUs, prices and stock for the same seed.

Names and descriptions come from word lists in this module (no data files, no network); prices follow
a log-normal spread around a typical price per category, between $1.99 and $1,999.00.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from peakshop.catalog.domain import CategoryRecord, ProductRecord, SkuRecord, slugify
from peakshop.catalog.repository import CatalogRepository
from peakshop.platform.db import Database

MIN_SEED_PRICE = 199
MAX_SEED_PRICE = 199_900
CURRENCY = "USD"
_EPOCH = 1_700_000_000.0  # created_at of the first product; later ones follow a minute apart

_COLOURS = ("Black", "Navy", "Olive", "Grey", "Red", "Cream", "Forest Green", "Sand")
_SIZES = ("XS", "S", "M", "L", "XL", "XXL")


@dataclass(frozen=True)
class _Kind:
    """What the products of one leaf category are made of."""

    nouns: tuple[str, ...]
    features: tuple[str, ...]
    axes: tuple[tuple[str, tuple[str, ...]], ...]
    median_price: int
    spread: float = 0.55


_TREE: dict[str, dict[str, _Kind]] = {
    "Electronics": {
        "Laptops": _Kind(
            ("Laptop", "Ultrabook", "Notebook", "Chromebook", "Workstation"),
            ("14-inch", "15-inch", "OLED", "Touchscreen", "Fanless", "Pro"),
            (
                ("colour", ("Silver", "Space Grey", "Black")),
                ("storage", ("256 GB", "512 GB", "1 TB", "2 TB")),
            ),
            89_900,
            0.45,
        ),
        "Phones": _Kind(
            ("Smartphone", "Phone", "Flip Phone", "Rugged Phone"),
            ("5G", "Dual-SIM", "Compact", "Max", "Lite"),
            (("colour", ("Black", "White", "Blue", "Coral")), ("storage", ("128 GB", "256 GB", "512 GB"))),
            49_900,
        ),
        "Headphones": _Kind(
            ("Headphones", "Earbuds", "Headset", "Earphones"),
            ("Noise-Cancelling", "Wireless", "Studio", "Sport", "Over-Ear"),
            (("colour", ("Black", "White", "Navy", "Rose")),),
            12_900,
            0.7,
        ),
        "Cameras": _Kind(
            ("Camera", "Action Camera", "Mirrorless Camera", "Instant Camera"),
            ("4K", "Waterproof", "Full-Frame", "Compact", "Vlogging"),
            (("colour", ("Black", "Silver")), ("kit", ("Body Only", "With 24-70mm Lens", "Travel Kit"))),
            54_900,
        ),
    },
    "Home & Kitchen": {
        "Cookware": _Kind(
            ("Skillet", "Dutch Oven", "Saucepan", "Wok", "Stockpot", "Baking Sheet"),
            ("Cast Iron", "Stainless", "Non-Stick", "Enamelled", "Carbon Steel"),
            (("size", ("20 cm", "24 cm", "28 cm", "32 cm")), ("colour", ("Black", "Red", "Cream", "Teal"))),
            5_900,
        ),
        "Furniture": _Kind(
            ("Armchair", "Bookcase", "Side Table", "Desk", "Bench", "Bar Stool"),
            ("Oak", "Walnut", "Rattan", "Mid-Century", "Folding", "Upholstered"),
            (("finish", ("Natural", "Walnut", "Black", "White")),),
            24_900,
            0.6,
        ),
        "Bedding": _Kind(
            ("Duvet Cover", "Sheet Set", "Pillow", "Quilt", "Throw Blanket"),
            ("Linen", "Percale", "Sateen", "Flannel", "Organic Cotton"),
            (("size", ("Twin", "Full", "Queen", "King")), ("colour", ("White", "Sand", "Grey", "Navy"))),
            7_900,
        ),
        "Lighting": _Kind(
            ("Floor Lamp", "Desk Lamp", "Pendant Light", "String Lights", "Lantern"),
            ("Dimmable", "Brass", "Smart", "Paper", "Industrial"),
            (("finish", ("Brass", "Black", "White", "Chrome")),),
            6_900,
        ),
    },
    "Clothing": {
        "Jackets": _Kind(
            ("Jacket", "Parka", "Rain Shell", "Puffer", "Bomber Jacket"),
            ("Waterproof", "Insulated", "Packable", "Down", "Waxed Cotton"),
            (("size", _SIZES), ("colour", _COLOURS)),
            14_900,
        ),
        "Sweaters": _Kind(
            ("Sweater", "Cardigan", "Hoodie", "Crewneck", "Turtleneck"),
            ("Merino", "Cashmere", "Cotton", "Cable-Knit", "Fleece"),
            (("size", _SIZES), ("colour", _COLOURS)),
            6_900,
        ),
        "Shoes": _Kind(
            ("Sneakers", "Boots", "Loafers", "Trail Runners", "Sandals"),
            ("Leather", "Suede", "Waterproof", "Lightweight", "Vegan"),
            (("size", ("7", "8", "9", "10", "11", "12")), ("colour", ("Black", "White", "Tan", "Grey"))),
            9_900,
        ),
    },
    "Sports & Outdoors": {
        "Camping": _Kind(
            ("Tent", "Sleeping Bag", "Camp Stove", "Backpack", "Hammock"),
            ("Ultralight", "Two-Person", "Four-Season", "Insulated", "Compact"),
            (("colour", ("Orange", "Green", "Blue", "Grey")),),
            12_900,
            0.7,
        ),
        "Cycling": _Kind(
            ("Helmet", "Bike Light", "Saddle", "Cycling Jersey", "Bike Lock"),
            ("Aero", "Road", "Gravel", "Commuter", "Carbon"),
            (("size", ("S", "M", "L")), ("colour", ("Black", "White", "Neon Yellow"))),
            6_900,
        ),
        "Fitness": _Kind(
            ("Yoga Mat", "Kettlebell", "Dumbbell Set", "Resistance Bands", "Jump Rope"),
            ("Non-Slip", "Adjustable", "Cork", "Weighted", "Travel"),
            (("weight", ("4 kg", "8 kg", "12 kg", "16 kg")), ("colour", ("Black", "Purple", "Teal"))),
            3_900,
        ),
    },
    "Books & Media": {
        "Fiction": _Kind(
            ("Novel", "Mystery", "Saga", "Thriller", "Short Stories"),
            ("Illustrated", "Collected", "Annotated", "Bestselling", "Award-Winning"),
            (("format", ("Hardcover", "Paperback", "E-book", "Audiobook")),),
            1_899,
            0.4,
        ),
        "Cookbooks": _Kind(
            ("Cookbook", "Baking Book", "Kitchen Handbook", "Recipe Collection"),
            ("Vegetarian", "Weeknight", "Italian", "Japanese", "Seasonal"),
            (("format", ("Hardcover", "Paperback", "E-book")),),
            2_999,
            0.4,
        ),
    },
    "Toys & Games": {
        "Board Games": _Kind(
            ("Board Game", "Card Game", "Strategy Game", "Party Game"),
            ("Cooperative", "Family", "Deluxe", "Two-Player", "Classic"),
            (("edition", ("Standard", "Deluxe", "Travel")),),
            3_499,
        ),
        "Building Sets": _Kind(
            ("Building Set", "Construction Kit", "Marble Run", "Robot Kit"),
            ("Starter", "Space", "Castle", "City", "Motorised"),
            (("pieces", ("250 pieces", "500 pieces", "1000 pieces")),),
            4_999,
            0.6,
        ),
        "Puzzles": _Kind(
            ("Jigsaw Puzzle", "3D Puzzle", "Puzzle Box", "Brain Teaser"),
            ("Panoramic", "Wooden", "Landscape", "Vintage", "Glow-in-the-Dark"),
            (("pieces", ("500 pieces", "1000 pieces", "2000 pieces")),),
            2_499,
            0.4,
        ),
    },
}

_BRANDS = (
    "Aurora", "Nimbus", "Vertex", "Harbor", "Juniper", "Solstice", "Cobalt", "Meridian", "Alder",
    "Kestrel", "Ember", "Northwind", "Lumen", "Granite", "Tidal", "Sable", "Orchard", "Atlas",
    "Willow", "Quill",
)  # fmt: skip
_QUALITIES = ("durable", "thoughtfully designed", "lightweight", "versatile", "handsome", "reliable",
              "comfortable", "easy-care", "well-made", "everyday")  # fmt: skip
_USES = ("daily use", "weekend trips", "small spaces", "busy mornings", "gift giving", "long days",
         "the whole family", "the outdoors", "work and play", "years of use")  # fmt: skip
_DETAILS = (
    "Every seam and joint is checked before it leaves the workshop.",
    "It comes with a two-year warranty and free returns.",
    "Materials are responsibly sourced and the packaging is recyclable.",
    "Customers praise its finish and attention to detail.",
    "Designed in small batches and tested by our own team.",
    "Pairs well with the rest of the collection.",
)
_PRICED_AXES = frozenset({"storage", "kit", "pieces", "weight"})
# How many SKUs a product has: 1 to 6, about 3 on average.
_SKU_COUNTS = (1, 2, 3, 4, 5, 6)
_SKU_WEIGHTS = (20, 20, 25, 20, 10, 5)


@dataclass(frozen=True)
class GeneratedCatalog:
    categories: list[CategoryRecord]
    products: list[ProductRecord]
    skus: list[SkuRecord]


def _category_id(name: str) -> str:
    return "c_" + slugify(name).replace("-", "_")


def _categories() -> tuple[list[CategoryRecord], list[tuple[CategoryRecord, _Kind]]]:
    categories: list[CategoryRecord] = []
    leaves: list[tuple[CategoryRecord, _Kind]] = []
    for parent_name, children in _TREE.items():
        parent = CategoryRecord(_category_id(parent_name), slugify(parent_name), parent_name, None)
        categories.append(parent)
        for child_name, kind in children.items():
            child = CategoryRecord(_category_id(child_name), slugify(child_name), child_name, parent.id)
            categories.append(child)
            leaves.append((child, kind))
    return categories, leaves


def _shop_price(cents: float) -> int:
    """A price as shops write it: whole dollars minus a cent, within the seed's bounds."""
    dollars = max(2, round(cents / 100))
    return min(MAX_SEED_PRICE, max(MIN_SEED_PRICE, dollars * 100 - 1))


def generate_catalog(products: int, seed: int) -> GeneratedCatalog:
    """`products` products over ~25 categories, about three SKUs each; the same seed, the same catalog."""
    rng = random.Random(f"peakshop-catalog:{seed}")
    categories, leaves = _categories()
    product_rows: list[ProductRecord] = []
    sku_rows: list[SkuRecord] = []
    for number in range(1, products + 1):
        category, kind = rng.choice(leaves)
        brand = rng.choice(_BRANDS)
        name = f"{brand} {rng.choice(kind.features)} {rng.choice(kind.nouns)}"
        product_id = f"p_{number:06d}"
        quality = rng.choice(_QUALITIES)
        article = "an" if quality[0] in "aeiou" else "a"
        first, second = rng.sample(_DETAILS, 2)
        description = f"The {name} is {article} {quality} pick for {rng.choice(_USES)}. {first} {second}"
        product_rows.append(
            ProductRecord(
                id=product_id,
                slug=f"{slugify(name)}-{number:06d}",
                name=name,
                description=description,
                category_id=category.id,
                created_at=_EPOCH + number * 60.0,
            )
        )
        base = rng.lognormvariate(math.log(kind.median_price), kind.spread)
        combinations = list(itertools.product(*(values for _, values in kind.axes)))
        count = min(len(combinations), rng.choices(_SKU_COUNTS, _SKU_WEIGHTS)[0])
        for index, combination in enumerate(sorted(rng.sample(combinations, count)), start=1):
            attributes = {axis: value for (axis, _), value in zip(kind.axes, combination, strict=True)}
            # Bigger variants of the same product cost more, as they do in real shops.
            step = sum(
                values.index(value)
                for (axis, values), value in zip(kind.axes, combination, strict=True)
                if axis in _PRICED_AXES
            )
            sku_rows.append(
                SkuRecord(
                    id=f"sku_{number:06d}_{index}",
                    code=f"{brand[:3].upper()}-{number:06d}-{index}",
                    product_id=product_id,
                    attributes=attributes,
                    price=_shop_price(base * (1 + 0.08 * step) * rng.choice((1.0, 1.0, 1.0, 1.05))),
                    currency=CURRENCY,
                )
            )
    return GeneratedCatalog(categories, product_rows, sku_rows)


def stock_levels(products: int, seed: int) -> Iterator[tuple[str, int]]:
    """`(sku_id, initial_stock)` for every SKU of `generate_catalog(products, seed)`, in SKU order.

    Most SKUs hold 1..200 units, about one in twelve is sold out, and one in twenty is a bulk line of
    500..5000; the stream depends only on the seed, so inventory can be seeded to match the catalog.
    """
    rng = random.Random(f"peakshop-stock:{seed}")
    for sku in generate_catalog(products, seed).skus:
        roll = rng.random()
        if roll < 0.08:
            yield sku.id, 0
        elif roll < 0.95:
            yield sku.id, rng.randint(1, 200)
        else:
            yield sku.id, rng.randint(500, 5_000)


@dataclass(frozen=True)
class SeedResult:
    categories: int
    products: int
    skus: int
    seconds: float


async def seed_catalog(
    db: Database,
    products: int,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
    *,
    batch: int = 1_000,
) -> SeedResult:
    """Write the generated catalog in batches; seeding again with the same seed replaces, never adds."""
    started = time.perf_counter()
    catalog = generate_catalog(products, seed)
    await CatalogRepository(db).import_catalog(
        catalog.categories, catalog.products, catalog.skus, batch=batch, progress=progress
    )
    return SeedResult(
        len(catalog.categories), len(catalog.products), len(catalog.skus), time.perf_counter() - started
    )

"""The catalog service: products, SKUs, categories, prices and search."""

"""Carts: anonymous or an account's, lines of SKU and quantity, priced from the catalog when read."""

"""The inventory service: stock per SKU, reservations with expiry, sold counts."""

"""The orders service: checkout attempts, orders with their priced lines, and the saga that places them."""

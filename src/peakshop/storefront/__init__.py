"""The public API shoppers use; it composes the other services through their clients."""

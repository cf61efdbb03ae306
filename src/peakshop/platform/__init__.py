"""Domain-free building blocks every service is made of."""

"""The only modules services import from one another: request/response types and events."""

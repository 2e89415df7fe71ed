"""Request and response bodies; validation lives here, not in the routes."""

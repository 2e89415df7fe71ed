"""Database queries, one module per aggregate; routes and tasks call these, never raw SQL."""

"""Business rules: typed functions that own their transactions and never touch the request."""

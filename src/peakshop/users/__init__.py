"""The users service: accounts, argon2 password hashes, bearer sessions and addresses."""

"""`python -m connector` is the same as the `cessio` command."""

from connector.cli import main

main()

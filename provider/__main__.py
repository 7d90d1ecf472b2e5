"""`python -m provider` runs the CLI (the same as the `prefect-provider` script)."""

from provider.cli import main

main()

"""``python -m slipway`` runs the command line."""

from slipway.entrypoints.cli.app import main

main()

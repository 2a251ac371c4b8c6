"""``python -m reachmeter`` runs the command line."""

from reachmeter.cli import main

main()

"""`python -m aistrata.interface.cli`."""

from . import main

main()

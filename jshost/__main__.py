"""`python -m jshost ...` is the `jshost` command."""

from jshost.cli import main

main(prog_name="jshost")

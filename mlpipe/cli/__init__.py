"""The `ml` command line: argument parsing, reports, one module per command."""

"""The command line: the root Typer app, global options, the config file, mounting plugin commands,
console output; the one place errors become exit codes."""

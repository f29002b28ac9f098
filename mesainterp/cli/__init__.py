"""The `mesainterp` command line: one module per subcommand."""

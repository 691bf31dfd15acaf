"""`shelfwatch` command line: one module per command group, `common` for what they share, `app` to
assemble them (the console script is `shelfwatch.cli.app:app`)."""

"""`python -m shelfwatch.cli ...`, as the `shelfwatch` script."""

from shelfwatch.cli.app import app

if __name__ == "__main__":
    app()

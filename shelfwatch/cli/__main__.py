"""`python -m shelfwatch.cli ...`, as the `shelfwatch` script."""

from shelfwatch.cli import app

if __name__ == "__main__":
    app()

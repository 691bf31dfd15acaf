"""Web views for planners, store managers and the CX team (`shelfwatch web`)."""

"""Ground floor: settings, database helpers and domain facts; imports nothing of the product."""

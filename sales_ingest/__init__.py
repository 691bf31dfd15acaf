"""Retailer files: POS sales (pos_files) and the reference data they refer to (reference_files)."""

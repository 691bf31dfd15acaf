"""Daily demand forecasts per store x SKU, with quantiles (long frames: store_id, sku, date, units)."""

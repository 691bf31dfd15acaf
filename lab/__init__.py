"""The lab: simulator, benchmarks, baselines, test brokers and the demo. Product code never imports it."""

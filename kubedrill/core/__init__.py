"""The bottom layer: value types, errors, durations, thresholds, latency histograms and
settings. Nothing here knows about clusters, load generators or checks."""

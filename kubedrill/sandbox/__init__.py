"""Offline sandbox: upstream Go binaries for a local kwok cluster."""

"""Adapters to the outside world: the Kubernetes API (the only importer of ``kubernetes``)
and Prometheus (a client, and a local Prometheus process for tests and the demo)."""

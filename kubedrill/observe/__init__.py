"""Watching the cluster onto the timeline."""

from kubedrill.observe.watcher import DEFAULT_KINDS, ClusterWatcher, extract_fields

__all__ = ["DEFAULT_KINDS", "ClusterWatcher", "extract_fields"]

"""Watching the cluster onto the timeline: the watcher, evictions, Prometheus samples."""

from kubedrill.observe.evictions import evict
from kubedrill.observe.sampler import PromSampler
from kubedrill.observe.watcher import DEFAULT_KINDS, ClusterWatcher, extract_fields

__all__ = ["DEFAULT_KINDS", "ClusterWatcher", "PromSampler", "evict", "extract_fields"]

"""``kubedrill chaos cleanup`` and ``kubedrill chaos janitor``: undo what killed runs left.

Both find leftovers in the cluster by their markers (read from the API, not trusted from
a journal) and undo them only after checking, object by object, that the marker is still
kubedrill's. So neither needs the ``chaos.contexts`` allow-list: they never touch an
object chaos did not mark. ``cleanup`` also replays this machine's journal.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from kubedrill.adapters.kube import KubeAdapter
from kubedrill.chaos.engine import Chaos, Reconciled
from kubedrill.chaos.undo import find_leftovers
from kubedrill.core.durations import parse_duration
from kubedrill.core.settings import load_settings

__all__ = ["chaos"]

_RBAC_AND_CRONJOB = """\
# kubedrill chaos janitor: undoes expired chaos markers (cordons, burner Jobs, node Leases)
apiVersion: v1
kind: ServiceAccount
metadata: {name: kubedrill-janitor, namespace: NAMESPACE}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: kubedrill-janitor}
rules:
- {apiGroups: [""], resources: [nodes], verbs: [get, list, patch]}
- {apiGroups: [""], resources: [pods], verbs: [list]}
- {apiGroups: [batch], resources: [jobs], verbs: [get, list, delete]}
- {apiGroups: [coordination.k8s.io], resources: [leases], verbs: [get, list, delete]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: kubedrill-janitor}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kubedrill-janitor}
subjects: [{kind: ServiceAccount, name: kubedrill-janitor, namespace: NAMESPACE}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: kubedrill-janitor, namespace: NAMESPACE}
spec:
  schedule: "*/5 * * * *"
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      activeDeadlineSeconds: 240
      template:
        spec:
          serviceAccountName: kubedrill-janitor
          restartPolicy: Never
          containers:
          - name: janitor
            image: IMAGE
            command: [kubedrill, chaos, janitor]
"""


def _session(config: Path | None, kubeconfig: Path | None) -> Chaos:
    overrides = {"cluster.kubeconfig": str(kubeconfig)} if kubeconfig else None
    settings = load_settings(config, overrides=overrides, override_source="--kubeconfig")
    adapter = KubeAdapter.from_settings(settings.cluster)
    return Chaos(adapter, settings, say=lambda m: click.echo(m, err=True), check_context=False)


def _report(done: list[Reconciled]) -> bool:
    for r in done:
        click.echo(f"{'ok' if r.ok else 'FAILED'}  {r.what}: {r.target}: {r.outcome}")
    return all(r.ok for r in done)


@click.group()
def chaos() -> None:
    """Clean up after chaos: what a killed runner left, from its journal and the cluster."""


@chaos.command()
@click.option("--config", type=click.Path(path_type=Path), default=None, help="drill.yaml")
@click.option("--kubeconfig", type=click.Path(path_type=Path), default=None)
@click.option("--force", is_flag=True, help="also undo markers of runs that look alive")
@click.option("--dry-run", is_flag=True, help="list what would be undone; change nothing")
def cleanup(config: Path | None, kubeconfig: Path | None, force: bool, dry_run: bool) -> None:
    """Undo leftovers: this machine's open journal intents whose runner is gone, and every
    marked cordon, burner Job or node Lease whose runner is gone or whose expiry passed."""
    session = _session(config, kubeconfig)
    done = session.reconcile(force=force, dry_run=dry_run)
    ok = _report(done)
    remaining = [] if dry_run else find_leftovers(session.adapter)
    for left in remaining:
        click.echo(f"still marked (its runner looks alive; --force to undo): {left.describe()}")
    if not done and not remaining:
        click.echo("kubedrill chaos cleanup: nothing left behind")
    raise SystemExit(0 if ok else 1)


@chaos.command()
@click.option("--config", type=click.Path(path_type=Path), default=None, help="drill.yaml")
@click.option("--kubeconfig", type=click.Path(path_type=Path), default=None)
@click.option("--watch", "interval", default=None, help="keep going, every INTERVAL (30s)")
@click.option(
    "--print-manifest",
    "namespace",
    default=None,
    metavar="NAMESPACE",
    help="print a ServiceAccount, RBAC and CronJob that run the janitor, and exit",
)
@click.option("--image", default="kubedrill:latest", help="image for --print-manifest")
def janitor(
    config: Path | None,
    kubeconfig: Path | None,
    interval: str | None,
    namespace: str | None,
    image: str,
) -> None:
    """Undo expired chaos markers (the dead-man switch), once (a CronJob) or --watch."""
    if namespace is not None:
        click.echo(_RBAC_AND_CRONJOB.replace("NAMESPACE", namespace).replace("IMAGE", image))
        return
    every = None
    if interval is not None:
        try:
            every = parse_duration(interval)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--watch") from None
    session = _session(config, kubeconfig)
    while True:
        ok = _report(session.reconcile())
        if every is None:
            raise SystemExit(0 if ok else 1)
        sys.stdout.flush()
        time.sleep(every)

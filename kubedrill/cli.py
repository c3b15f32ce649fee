"""The ``kubedrill`` command. Exit codes are decided here and only here:

0 pass · 1 fail (or error) · 2 usage / config error · 3 inconclusive
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from kubedrill import __version__
from kubedrill.chaos.cli import chaos as chaos_command
from kubedrill.core.errors import ConfigError, KubedrillError
from kubedrill.core.settings import load_settings
from kubedrill.core.types import Verdict
from kubedrill.load.cli import load as load_command
from kubedrill.run import Gate, gate_for, new_run_id
from kubedrill.sandbox.cli import sandbox as sandbox_command

__all__ = ["EXIT", "exit_code_for", "main"]

EXIT = {"pass": 0, "fail": 1, "usage": 2, "inconclusive": 3}
DEMO_NAMESPACE = "kubedrill-demo"


def exit_code_for(verdict: Verdict, gate: Gate | None = None) -> int:
    """The exit code of a run's verdict under the gate policy (``kubedrill.run.policy``)."""
    return EXIT[(gate or Gate()).outcome(verdict)]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """kubedrill: prove a GPU-backed Kubernetes service does what its runbook claims."""


@cli.command()
def version() -> None:
    """Print the kubedrill version."""
    click.echo(f"kubedrill {__version__}")


@cli.command()
@click.option(
    "--config", "config", required=True, type=click.Path(path_type=Path), help="drill.yaml to check"
)
def validate(config: Path) -> None:
    """Check a settings file (and KUBEDRILL_* variables) without touching any cluster."""
    settings = load_settings(config)
    click.echo(f"{config}: OK (target {settings.target.name} in {settings.target.namespace})")


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--suite", type=click.Choice(["ci", "gameday", "capacity", "all"]), default=None)
@click.option("--config", "config", type=click.Path(path_type=Path), default=None)
@click.option("--report-dir", type=click.Path(path_type=Path), default=None)
@click.option("--dry-run", is_flag=True, default=False)
@click.option("--time-scale", type=float, default=None, help="multiply scenario durations")
@click.option(
    "--sandbox",
    "use_sandbox",
    is_flag=True,
    default=False,
    help="bring up (or reuse) the local sandbox, building what is missing, and run the "
    f"cluster scenarios against it (namespace {DEMO_NAMESPACE} unless --drill-namespace is given)",
)
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
def run(
    suite: str | None,
    config: Path | None,
    report_dir: Path | None,
    dry_run: bool,
    time_scale: float | None,
    use_sandbox: bool,
    pytest_args: tuple[str, ...],
) -> None:
    """Run scenarios (default: scenarios/) with pytest and exit with the run's verdict.

    Extra arguments go to pytest; without a path among them, scenarios/ is run.
    """
    if use_sandbox and not dry_run:  # a dry run touches nothing, the sandbox included
        pytest_args = _sandbox_args(pytest_args)
    overrides: dict[str, Any] = {
        "run.suite": suite,
        "report.dir": report_dir,
        "run.dry_run": True if dry_run else None,
        "run.time_scale": time_scale,
    }
    settings = load_settings(config, overrides=overrides, override_source="kubedrill run option")
    run_id = new_run_id()
    args = [
        sys.executable,
        "-m",
        "pytest",
        f"--drill-run-id={run_id}",
        f"--drill-report-dir={settings.report.dir}",
    ]
    if config:
        args.append(f"--drill-config={config}")
    if suite:
        args.append(f"--drill-suite={suite}")
    if dry_run:
        args.append("--drill-dry-run")
    if time_scale is not None:
        args.append(f"--drill-time-scale={time_scale}")
    args += list(pytest_args)
    if not any(Path(a.split("::")[0]).exists() for a in pytest_args if not a.startswith("-")):
        args.append("scenarios")
    rc = subprocess.call(args)
    doc_path = settings.report.dir / run_id / "run.json"
    if rc in (2, 3, 4):  # pytest: interrupted, internal error, usage error
        raise SystemExit(EXIT["usage"] if rc == 4 else EXIT["fail"])
    if not doc_path.is_file():
        click.echo("kubedrill: no scenario ran, so nothing was proven (INCONCLUSIVE)", err=True)
        raise SystemExit(EXIT["inconclusive"])
    doc = json.loads(doc_path.read_text("utf-8"))
    verdict = Verdict(doc["verdict"])
    code = exit_code_for(verdict, gate_for(settings))
    if rc == 1 and code == EXIT["pass"]:
        code = EXIT["fail"]  # a plain test failed beside the scenarios
    for sc in doc.get("skipped", []):
        click.echo(f"kubedrill: skipped {sc['id']}: {sc['reason']}", err=True)
    click.echo(f"kubedrill: {verdict.value} — {doc_path}")
    html_path = doc_path.with_name("report.html")
    if html_path.is_file():
        click.echo(f"kubedrill: report — {html_path}")
    raise SystemExit(code)


def _sandbox_args(pytest_args: tuple[str, ...]) -> tuple[str, ...]:
    from kubedrill.sandbox.config import SandboxConfig
    from kubedrill.sandbox.lifecycle import up

    def progress(line: str) -> None:
        click.echo(f"sandbox: {line}", err=True)

    state, reused = up(SandboxConfig(), progress)
    click.echo(
        f"sandbox: {'reusing the running' if reused else 'started the'} sandbox at "
        f"{state.paths.dir} (stop it with `kubedrill sandbox down`)",
        err=True,
    )
    # --flag=value: a bare path argument would move pytest's rootdir (and its cache)
    extra = [f"--drill-kubeconfig={state.paths.kubeconfig}"]

    def given(flag: str) -> bool:
        return any(a == flag or a.startswith(f"{flag}=") for a in pytest_args)

    if not given("--drill-namespace"):
        extra += [f"--drill-namespace={DEMO_NAMESPACE}"]
    if not given("--drill-prometheus-url"):
        extra += [f"--drill-prometheus-url={state.prometheus_url}"]
    return (*extra, *pytest_args)


@cli.group()
def report() -> None:
    """Re-render a run's reports, or compare a run with a baseline."""


@report.command("render")
@click.argument("run_json", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--html", "html_out", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option("--markdown", "md_out", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option("--junit", "junit_out", type=click.Path(path_type=Path, dir_okay=False), default=None)
def report_render(
    run_json: Path, html_out: Path | None, md_out: Path | None, junit_out: Path | None
) -> None:
    """Render RUN_JSON (a run document, schema v2 or v3) again; default: --html beside it."""
    from kubedrill.report import load_run_document, render_html, render_junit, render_markdown

    doc = load_run_document(run_json)
    if html_out is None and md_out is None and junit_out is None:
        html_out = run_json.with_name("report.html")
    if html_out is not None:
        html_out.write_text(render_html(doc), encoding="utf-8")
        click.echo(f"kubedrill: html — {html_out}")
    if md_out is not None:
        link = None if html_out is None else str(html_out)
        md_out.write_text(render_markdown(doc, html_link=link), encoding="utf-8")
        click.echo(f"kubedrill: markdown — {md_out}")
    if junit_out is not None:
        junit_out.write_text(render_junit(doc), encoding="utf-8")
        click.echo(f"kubedrill: junit — {junit_out}")


@report.command("diff")
@click.argument("baseline", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("run_json", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="percent a percentile's confidence interval may move before it is a regression",
)
@click.option("--json", "json_out", type=click.Path(path_type=Path, dir_okay=False), default=None)
def report_diff(baseline: Path, run_json: Path, tolerance: float, json_out: Path | None) -> None:
    """Compare RUN_JSON with BASELINE; exit 1 on a regression beyond --tolerance."""
    from kubedrill.report.diff import diff_runs
    from kubedrill.report.document import load_run_document

    result = diff_runs(load_run_document(baseline), load_run_document(run_json), tolerance)
    click.echo(result.to_text())
    if json_out is not None:
        json_out.write_text(json.dumps(result.to_dict(), indent=1) + "\n", encoding="utf-8")
    raise SystemExit(EXIT["fail"] if result.regressed else EXIT["pass"])


cli.add_command(chaos_command)
cli.add_command(load_command)
cli.add_command(sandbox_command)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="kubedrill", standalone_mode=False)
    except ConfigError as e:
        click.echo(f"kubedrill: config error: {e}", err=True)
        raise SystemExit(EXIT["usage"]) from None
    except click.exceptions.Exit as e:
        raise SystemExit(e.exit_code) from None
    except click.ClickException as e:
        e.show()
        raise SystemExit(EXIT["usage"]) from None
    except click.exceptions.Abort:
        raise SystemExit(EXIT["fail"]) from None
    except KubedrillError as e:
        click.echo(f"kubedrill: {e}", err=True)
        raise SystemExit(EXIT["fail"]) from None


if __name__ == "__main__":
    main()

"""`pocket`: build verified on-device bundles and run them on the desktop."""
from __future__ import annotations

import json
import sys
import tempfile
import traceback
from contextlib import contextmanager
from pathlib import Path

import click

from runtime_py.errors import PocketError
from sdk_builder.formats import FORMATS, RECIPES, TARGETS

BUNDLE = click.Path(exists=True, file_okay=True, dir_okay=True, path_type=Path)


def _console():
    """A console that is wide enough for the summary table even when piped."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=160)


@contextmanager
def _runtime_chatter_hidden():
    """Keep runtimes' native log lines (cpuinfo, delegate notices) off the terminal, unless --debug."""
    if "--debug" in sys.argv:
        yield
        return
    from sdk_builder.progress import capture_native_output

    with tempfile.TemporaryDirectory() as tmp:
        with capture_native_output(Path(tmp) / "runtime.log"):
            yield


def _echo_json(data) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show the full traceback on errors.")
@click.version_option(package_name="pocketvision")
def cli(debug: bool) -> None:
    """Pocket Vision: turn trained PyTorch vision models into verified ExecuTorch, LiteRT
    and Core ML artifacts, and run them on this desktop exactly as a phone would.

    \b
    pocket list                                  models, formats, targets, recipes
    pocket build skipnet_m --target android      build + verify dist/skipnet_m-android/
    pocket info dist/skipnet_m-android           what is in a bundle
    pocket verify dist/skipnet_m-android         re-check sha256 and golden outputs
    pocket run dist/skipnet_m-android digit.png  run an image through the bundle
    """


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_cmd(as_json: bool) -> None:
    """List zoo models, formats with their recipes, and targets."""
    from models.registry import items

    models = [{"name": n, "task": s.task, "input": list(s.input.shape), "description": s.description}
              for n, s in items()]
    formats = [{"name": f.name, "suffix": f.suffix, "runs_on": f.runs_on, "recipes": list(f.recipes),
                "verified_here": f.verified_here} for f in FORMATS]
    targets = {t: [f"{f}:{r}" for f, r in pairs] for t, pairs in TARGETS.items()}
    if as_json:
        _echo_json({"models": models, "formats": formats, "targets": targets, "recipes": RECIPES})
        return
    from rich.table import Table

    console = _console()
    table = Table(title="models")
    for col in ("name", "task", "input", "description"):
        table.add_column(col)
    for m in models:
        table.add_row(m["name"], m["task"], "×".join(map(str, m["input"])), m["description"])
    console.print(table)
    table = Table(title="formats")
    for col in ("format", "file", "recipes", "runs on", "verified here"):
        table.add_column(col)
    for f in formats:
        table.add_row(f["name"], f["suffix"], ", ".join(f["recipes"]), f["runs_on"], f["verified_here"])
    console.print(table)
    for target, pairs in targets.items():
        console.print(f"[bold]{target}[/]: {', '.join(pairs)}")


@cli.command()
@click.argument("model")
@click.option("--target", "-t", default="android", show_default=True,
              help=f"One of: {', '.join(TARGETS)}.")
@click.option("--recipe", "-r", "recipes", multiple=True,
              help=f"Only these recipes (repeatable): {', '.join(RECIPES)}.")
@click.option("--weights", type=click.Path(path_type=Path), help="Weights (.safetensors or .pt state dict).")
@click.option("--out", "-o", "out_dir", type=click.Path(path_type=Path), default=Path("dist"),
              show_default=True, help="Folder that receives <model>-<target>/.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON when done.")
def build(model: str, target: str, recipes: tuple[str, ...], weights: Path | None,
          out_dir: Path, as_json: bool) -> None:
    """Export MODEL for a target, verify every artifact, write the bundle."""
    from sdk_builder.build import BuildRequest
    from sdk_builder.build import build as run_build
    from sdk_builder.formats import plan_target
    from sdk_builder.progress import Steps
    from sdk_builder.report import summary_table

    plan_target(target, recipes)  # fail fast on a wrong target/recipe, before loading torch
    if weights is not None and not weights.is_file():
        raise PocketError(f"weights file {weights} does not exist")
    steps = Steps(quiet=as_json)
    path, manifest = run_build(BuildRequest(model, target, list(recipes), weights, out_dir), steps)
    if as_json:
        _echo_json(manifest)
        return
    console = _console()
    console.print(summary_table(manifest))
    console.print(f"bundle: [bold]{path}[/]")


@cli.command()
@click.argument("bundle", type=BUNDLE)
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def info(bundle: Path, as_json: bool) -> None:
    """Show what is in a bundle: model, input rules, artifacts and their numbers."""
    from runtime_py import manifest as mf

    manifest = mf.read(bundle)
    if as_json:
        _echo_json(manifest)
        return
    from sdk_builder.report import summary_table

    console = _console()
    inp = manifest["input"]
    console.print(f"[bold]{manifest['model']['name']}[/] ({manifest['model']['task']}), "
                  f"built {manifest['created']}")
    console.print(f"input {inp['shape']} {inp['layout']} {inp['color']} range {inp['range']} "
                  f"mean {inp['mean']} std {inp['std']}; postprocess {manifest['postprocess']}")
    console.print(summary_table(manifest))
    for art in manifest["artifacts"]:
        fallbacks = (art.get("delegation") or {}).get("fallback_ops") or []
        if fallbacks:
            console.print(f"{art['file']}: not delegated: {', '.join(fallbacks)}")


@cli.command()
@click.argument("bundle", type=BUNDLE)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
def verify(bundle: Path, as_json: bool) -> None:
    """Check every artifact's sha256 and re-run the golden inputs."""
    from sdk_builder.verify import reverify_bundle

    with _runtime_chatter_hidden():
        results = reverify_bundle(bundle)
    if as_json:
        _echo_json({"bundle": str(bundle), "ok": True, "artifacts": results})
        return
    for r in results:
        extra = f" (max abs error {r['max_abs_error']:.1e})" if "max_abs_error" in r else ""
        click.echo(f"{r['file']}: {r['status']}{extra}")
    click.echo(f"{bundle}: verified")


@cli.command()
@click.argument("bundle", type=BUNDLE)
@click.argument("image", type=click.Path(path_type=Path))
@click.option("--artifact", "-a", help="Artifact file name (or a unique part of it).")
@click.option("--threads", type=click.IntRange(1, 64), default=None, help="Runtime threads.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
def run(bundle: Path, image: Path, artifact: str | None, threads: int | None, as_json: bool) -> None:
    """Run IMAGE through a bundle (pre-processing, real runtime, post-processing)."""
    import runtime_py

    with _runtime_chatter_hidden():
        session = runtime_py.load(bundle, artifact=artifact, threads=threads)
        result = session.run(image)
    result = {"artifact": session.path.name, **{k: v for k, v in result.items() if k != "outputs"}}
    if as_json:
        _echo_json(result)
        return
    if "top_k" in result:
        for item in result["top_k"]:
            click.echo(f"{item['label']:>12}  {item['score']:.4f}")
    else:
        _echo_json(result)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors on stderr, tracebacks only with --debug."""
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    try:
        cli.main(args=argv, prog_name="pocket", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()} (see 'pocket --help')", err=True)
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("error: interrupted; nothing was published", err=True)
        sys.exit(130)
    except PocketError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if debug:
            traceback.print_exc()
        click.echo(f"error: internal error {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
                   "(rerun with --debug for the traceback and report it)", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()

"""`pocket`: build verified on-device bundles and run them on the desktop."""
from __future__ import annotations

import json
import sys
import tempfile
import traceback
from contextlib import contextmanager
from pathlib import Path

import click

from runtime_py.errors import ExtraInputsError, PocketError, UsageError, one_line
from models.tasks import TASK_NAMES, TASKS
from sdk_builder.formats import FORMATS, TARGETS
from sdk_builder.quantize.recipes import RECIPES

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
    from models.catalog import millions, zoo_rows

    models = zoo_rows()
    formats = [{"name": f.name, "suffix": f.suffix, "runs_on": f.runs_on, "recipes": list(f.recipes),
                "verified_here": f.verified_here} for f in FORMATS]
    targets = {t: [f"{f}:{r}" for f, r in pairs] for t, pairs in TARGETS.items()}
    if as_json:
        recipes = [{"name": r.name, "summary": r.summary, "quantizes": r.quantizes,
                    "compute": r.compute, "calibrated": r.calibrated, "applies_to": r.applies_to}
                   for r in RECIPES]
        _echo_json({"models": models, "formats": formats, "targets": targets, "recipes": recipes})
        return
    from rich.table import Table

    console = _console()
    table = Table(title="models")
    for col in ("name", "task", "input", "params", "MACs", "held-out", "description"):
        table.add_column(col)
    for m in models:
        table.add_row(m["name"], m["task"], "×".join(map(str, m["input"])), millions(m["params"]),
                      millions(m["macs"]), m["headline"], m["description"])
    console.print(table)
    table = Table(title="formats")
    for col in ("format", "file", "recipes", "runs on", "verified here"):
        table.add_column(col)
    for f in formats:
        table.add_row(f["name"], f["suffix"], ", ".join(f["recipes"]), f["runs_on"], f["verified_here"])
    console.print(table)
    table = Table(title="recipes")
    for col in ("recipe", "quantizes", "compute", "calibrated", "applies to"):
        table.add_column(col)
    for r in RECIPES:
        table.add_row(r.name, r.quantizes, r.compute, "yes" if r.calibrated else "no", r.applies_to)
    console.print(table)
    for target, pairs in targets.items():
        console.print(f"[bold]{target}[/]: {', '.join(pairs)}")


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                             "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def train(args: tuple[str, ...]) -> None:
    """Train a zoo model from its spec (python -m models.train; --help for its options)."""
    from models.train import main as train_main

    code = train_main(list(args))
    if code:
        sys.exit(code)


def _floats(text: str | None, option: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter(f"takes comma-separated numbers, got '{text}'", param_hint=option) from None


def _shape(text: str) -> tuple[int, ...]:
    values = _floats(text, "--input-shape")
    if any(v != int(v) for v in values):
        raise click.BadParameter(f"takes whole numbers, got '{text}'", param_hint="--input-shape")
    return tuple(int(v) for v in values)


def _model_spec(model: str | None, model_file: str | None, input_shapes: tuple[str, ...], task: str,
                labels: Path | None, mean: str | None, std: str | None,
                output_names: str | None = None):
    """The ModelSpec to build: a zoo model by name, or the user's file:factory."""
    if (model is None) == (model_file is None):
        raise click.UsageError("give a zoo MODEL name or --model-file path.py:factory (one of them)")
    if model is not None:
        from models.registry import get

        if output_names is not None or input_shapes:
            raise click.UsageError("--input-shape and --output-names are for --model-file models "
                                   "(a zoo model declares its inputs and outputs)")
        return get(model)
    if not input_shapes:
        raise click.UsageError("--model-file needs --input-shape N,C,H,W")
    from models.byom import spec_from_file

    shapes = [_shape(text) for text in input_shapes]
    names = tuple(n.strip() for n in output_names.split(",")) if output_names else None
    return spec_from_file(model_file, shapes, task, labels, _floats(mean, "--mean"),
                          _floats(std, "--std"), names)


@cli.command()
@click.argument("model", required=False)
@click.option("--target", "-t", default="android", show_default=True,
              help=f"One of: {', '.join(TARGETS)}.")
@click.option("--recipe", "-r", "recipes", multiple=True,
              help=f"Only these recipes (repeatable): {', '.join(r.name for r in RECIPES)}.")
@click.option("--max-drop", type=click.FloatRange(min=0), default=None,
              help="Task-metric budget in points: try every recipe of each format and keep the "
                   "smallest artifact within it.")
@click.option("--weights", type=click.Path(path_type=Path), help="Weights (.safetensors or .pt state dict).")
@click.option("--calib-data", type=click.Path(path_type=Path), help="Folder of calibration images.")
@click.option("--calib-samples", type=click.IntRange(min=1), help="Number of calibration samples.")
@click.option("--model-file", help="Your own model: path/to/file.py:factory returning an nn.Module.")
@click.option("--input-shape", "input_shapes", multiple=True,
              help="With --model-file: N,C,H,W, e.g. 1,3,224,224. Repeat it for a model with "
                   "several inputs, in forward's order: the first is the image, the others are "
                   "tensors the app passes as they are.")
@click.option("--task", default="raw", show_default=True, type=click.Choice(TASK_NAMES),
              help="With --model-file: " + "; ".join(f"{t.name}: {t.summary}" for t in TASKS) + ".")
@click.option("--labels", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="With --model-file: labels.txt, one label per line.")
@click.option("--mean", help="With --model-file: per-channel mean after scaling to [0,1], e.g. 0.485,0.456,0.406.")
@click.option("--std", help="With --model-file: per-channel std, e.g. 0.229,0.224,0.225.")
@click.option("--output-names", help="With --model-file: names of the model's outputs, "
                                     "comma-separated (default output0, output1, ...).")
@click.option("--out", "-o", "out_dir", type=click.Path(path_type=Path), default=Path("dist"),
              show_default=True, help="Folder that receives <model>-<target>/.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON when done.")
def build(model: str | None, target: str, recipes: tuple[str, ...], max_drop: float | None,
          weights: Path | None, calib_data: Path | None, calib_samples: int | None,
          model_file: str | None, input_shapes: tuple[str, ...], task: str, labels: Path | None,
          mean: str | None, std: str | None, output_names: str | None, out_dir: Path,
          as_json: bool) -> None:
    """Export MODEL (or --model-file) for a target, verify every artifact, write the bundle."""
    from sdk_builder.build import BuildRequest, PartialBuildError
    from sdk_builder.build import build as run_build
    from sdk_builder.progress import Steps
    from sdk_builder.report import summary_table
    from sdk_builder.quantize.budget import candidates

    candidates(target, list(recipes), max_drop is not None)  # fail fast, before loading torch
    if weights is not None and not weights.is_file():
        raise PocketError(f"weights file {weights} does not exist")
    spec = _model_spec(model, model_file, input_shapes, task, labels, mean, std, output_names)
    for note in spec.notes:
        click.echo(f"note: {note}", err=True)
    request = BuildRequest(spec, target, list(recipes), weights, out_dir, max_drop, calib_data, calib_samples)
    path, manifest = run_build(request, Steps(quiet=as_json))
    if as_json:
        _echo_json(manifest)
    else:
        console = _console()
        console.print(summary_table(manifest))
        console.print(f"bundle: [bold]{path}[/]")
    if manifest["skipped"]:
        raise PartialBuildError(f"{path} was published without {len(manifest['skipped'])} "
                                "artifact(s): " + "; ".join(s["reason"] for s in manifest["skipped"]))


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
    from sdk_builder.report import delegation_note, summary_table

    console = _console()
    inp = manifest["input"]
    console.print(f"[bold]{manifest['model']['name']}[/] ({manifest['model']['task']}), "
                  f"built {manifest['created']}")
    console.print(f"input {inp['shape']} {inp['layout']} {inp['color']} range {inp['range']} "
                  f"mean {inp['mean']} std {inp['std']}; postprocess {manifest['postprocess']}")
    for extra in manifest.get("extra_inputs", []):
        console.print(f"extra input {extra['name']} {extra['shape']} {extra['dtype']} (passed as it is)")
    console.print(summary_table(manifest))
    for note in map(delegation_note, manifest["artifacts"]):
        if note:
            console.print(note, soft_wrap=True, markup=False)


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
@click.option("--out", "-o", "picture", type=click.Path(dir_okay=False, path_type=Path),
              help="Dense models: write the input and the result side by side to this PNG (or .jpg).")
@click.option("--extra-input", "extra_inputs", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A model with several inputs: a .npy file per input after the image, in order.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
def run(bundle: Path, image: Path, artifact: str | None, threads: int | None,
        picture: Path | None, extra_inputs: tuple[Path, ...], as_json: bool) -> None:
    """Run IMAGE through a bundle (pre-processing, real runtime, post-processing)."""
    import runtime_py
    from runtime_py.dense import json_safe
    from runtime_py.postprocess import get_kind
    from runtime_py.preprocess import open_image

    extra = [_npy(p) for p in extra_inputs]
    with _runtime_chatter_hidden():
        session = runtime_py.load(bundle, artifact=artifact, threads=threads)
        upright = open_image(image)
        try:
            result = session.run(upright, *extra)
        except ExtraInputsError as exc:
            raise ExtraInputsError(f"{exc}: pass one --extra-input file.npy per extra input, "
                                   "in the manifest's order") from None
    params = session.manifest["postprocess"]
    kind = get_kind(params["kind"])
    if picture is not None:
        _write_picture(picture, upright, result, params, session)
    summary = {"artifact": session.path.name, **json_safe({k: v for k, v in result.items() if k != "outputs"})}
    if as_json:
        _echo_json(summary | ({"picture": str(picture)} if picture else {}))
        return
    click.echo(f"{session.path.name} ({session.runtime_label}):")
    for line in kind.lines(result):
        click.echo(line)
    if picture is not None:
        click.echo(f"wrote {picture}")


def _npy(path: Path):
    """A float32 array from a .npy file, or a one-line UsageError."""
    import numpy as np

    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise UsageError(f"--extra-input {path} is not a .npy file (write one with numpy.save)")
    try:
        return np.load(path, allow_pickle=False).astype(np.float32)
    except (ValueError, OSError, TypeError) as exc:
        raise UsageError(f"--extra-input {path} is not a readable numeric .npy array: {exc}") from None


def _write_picture(path: Path, image, result: dict, params: dict, session) -> None:
    """The side-by-side PNG, written atomically (no half file on failure)."""
    import os

    from runtime_py.render import render

    labels = session.labels
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fmt = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"
    try:
        render(image, result, params, labels).save(tmp, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@cli.command()
@click.argument("bundle", type=BUNDLE)
@click.option("--artifact", "-a", "artifacts", multiple=True,
              help="Only this artifact (file name or unique part; repeatable). Default: all runnable.")
@click.option("--threads", default="1", show_default=True, help="Thread counts, comma-separated (e.g. 1,2).")
@click.option("--warmup", type=click.IntRange(0, 10_000), default=10, show_default=True,
              help="Untimed runs per candidate before timing.")
@click.option("--iters", type=click.IntRange(1, 100_000), default=200, show_default=True,
              help="Timed interleaved rounds (one call per candidate each).")
@click.option("--against", default="eager,onnxruntime", show_default=True,
              help="References timed alongside: eager, onnxruntime, or none.")
@click.option("--profile", is_flag=True, help="Top operators by time per artifact.")
@click.option("--roofline", is_flag=True, help="Achieved GFLOP/s against this machine's fp32 GEMM peak.")
@click.option("--no-overhead", is_flag=True, help="Skip timing Session.run against the raw runtime call.")
@click.option("--no-plots", is_flag=True, help="Do not write the PNG charts.")
@click.option("--out", "-o", type=click.Path(path_type=Path),
              help="Result JSON (PNGs next to it). Default: <bundle>.bench.json beside the bundle.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the result JSON on stdout (the tables then go to stderr).")
def bench(bundle: Path, artifacts: tuple[str, ...], threads: str, warmup: int, iters: int,
          against: str, profile: bool, roofline: bool, no_overhead: bool, no_plots: bool,
          out: Path | None, as_json: bool) -> None:
    """Time a bundle's artifacts side by side with PyTorch eager and ONNX Runtime (interleaved)."""
    from sdk_builder import bench as bench_mod
    from sdk_builder.bench.extra import print_tables

    opts = bench_mod.BenchOptions(
        artifacts=list(artifacts), threads=bench_mod.parse_threads(threads), warmup=warmup,
        iters=iters, against=bench_mod.parse_against(against), overhead=not no_overhead,
        profile=profile, roofline=roofline, plots=not no_plots)
    from rich.console import Console

    status = Console(stderr=True)
    with _runtime_chatter_hidden():
        result = bench_mod.run_bench(bundle, opts, say=lambda s: status.print(f"[dim]{s}[/]"))
    written = bench_mod.write(result, out or bench_mod.default_out(bundle), plots=opts.plots)
    report = bench_mod.link_from_report(bundle, written, result)
    console = status if as_json else _console()
    print_tables(console if console.is_terminal else Console(width=230, stderr=as_json), result)
    if as_json:
        _echo_json(result)
    status.print(f"wrote {', '.join(str(p) for p in written)}"
                 + (f"; linked from {report}" if report else ""))


def _terminate_as_interrupt() -> None:
    """SIGTERM (`kill`, CI timeouts) unwinds like Ctrl-C, so staging folders are removed."""
    import signal
    import threading

    def handler(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def _fail(message: str, exit_code: int) -> None:
    """The CLI's error contract: one line on stderr ("error: what; how to fix"), exit code."""
    click.echo(f"error: {' '.join(message.split())}", err=True)
    sys.exit(exit_code)


@cli.command()
@click.option("--corpus", "corpus_dir", type=click.Path(file_okay=False, path_type=Path),
              is_flag=False, default=None,
              flag_value=str(Path(__file__).resolve().parents[1] / "tests/fixtures/user_models/corpus"),
              help="Build every model of a corpus folder (default: the repository's user-model "
                   "corpus) and tabulate what built, verified and delegated.")
@click.option("--target", "-t", default="all", show_default=True, help="Target to build for.")
@click.option("--only", multiple=True, help="Only these corpus models (file stems; repeatable).")
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Result JSON (default with the repository corpus: docs/corpus.json, and the "
                   "README's table is re-rendered from it).")
@click.option("--json", "as_json", is_flag=True, help="Print the result JSON.")
def doctor(corpus_dir: Path | None, target: str, only: tuple[str, ...], out: Path | None,
           as_json: bool) -> None:
    """Check how well Pocket builds the models people bring (--corpus)."""
    from sdk_builder import corpus

    if corpus_dir is None:
        raise click.UsageError("pocket doctor needs --corpus [FOLDER]")
    per_model = len(corpus.columns(target))      # refuses an unknown target before building
    console = _console()
    with console.status("building the corpus") as status:
        result = corpus.run_corpus(corpus_dir, target, only,
                                   progress=lambda text: status.update(f"building {text}"))
    default_run = corpus_dir.resolve() == corpus.DEFAULT_CORPUS.resolve() and not only
    path = out or (corpus.RESULTS if default_run else None)
    if path is not None:
        corpus.write(result, path)
        if path == corpus.RESULTS:
            from sdk_builder.readme import main as render_readme

            render_readme()
    if as_json:
        _echo_json(result)
        return
    click.echo(corpus.markdown(result))
    click.echo(f"{per_model} artifacts per model; "
               + (f"wrote {path}" if path else "not written (use --out)"))


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors on stderr, tracebacks only with --debug."""
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    _terminate_as_interrupt()
    try:
        cli.main(args=argv, prog_name="pocket", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        _fail(f"{exc.format_message()} (see 'pocket --help')", exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _fail("interrupted; nothing was published", 130)
    except PocketError as exc:
        if debug:
            traceback.print_exc()
        _fail(str(exc), exc.exit_code)
    except OSError as exc:   # a file or folder the OS refused (permissions, full disk, ...)
        if debug:
            traceback.print_exc()
        where = f" ({exc.filename})" if exc.filename else ""
        _fail(f"{exc.strerror or one_line(exc)}{where}; check the path, its permissions and free space", 1)
    except MemoryError:
        _fail("out of memory; use a smaller input or free some memory", 1)
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if debug:
            traceback.print_exc()
        _fail(f"internal error {type(exc).__name__}: {one_line(exc)} "
              "(rerun with --debug for the traceback and report it)", 1)


if __name__ == "__main__":
    main()

"""The README's examples run: every `pocket` command of its ```bash blocks and every ```python
block, in README order, in one working folder laid out as the README assumes.

The folder: `dist/<bundle>` are copies of the shared bundles (tests/bundles.py; built anyway by
other tests), `digit.png` a real digit 7, `photo.jpg` a real photo (scikit-image's coffee),
`my_net.py` + `my_net.safetensors` + `labels.txt` a tiny 224x224 classifier,
`fusion.py` + `mask.npy` a two-input model, `my_images/` real digits.

A `pocket` command runs through the CLI as written; its exit code must be 0 and its output
must say something meaningful (`check_pocket`). A README `pocket build` whose arguments are a
shared bundle's is that bundle, already built by the same command (`-o` aside). Commands too
expensive for the suite, and placeholders, are in one table, INSTEAD: README command -> what
the test runs instead, and why. Anything else the README gains runs as written, so an
example that stops working (or a new one that never worked) fails here; a table entry the
README no longer has fails too.
"""
from __future__ import annotations

import ast
import hashlib
import json
import re
import runpy
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.bundles import BUNDLES
from tests.tools.readme_examples import Instead, Step, parse, plan, stale
from tests.tools.cli import pocket

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
FIXTURES = ROOT / "tests" / "fixtures"
DIGIT = FIXTURES / "digits" / "7_3912.png"          # the README's comment shows label '7'
MY_NET_LABELS = ("cat", "dog", "bird")


# --- the table: README command -> what runs instead, and why ----------------------------

BUDGET_RECIPES = ("fp32", "int8da-w4g32", "fp16")

INSTEAD: dict[str, Instead] = {
    "pocket build skipnet_m --target ios": Instead(
        shared="skipnet_m-ios",
        why="the shared skipnet_m-ios bundle is this command with every Core ML recipe "
            "(-r fp16 -r w8 -r palettize-6bit ...), built anyway for test_zoo_core_ml; its "
            "artifacts include every default one (checked); the default alone would cost ~1.5 min"),
    "pocket build skipnet_m --target all --max-drop 1.0": Instead(
        commands=("pocket build skipnet_m --target all --max-drop 1.0 "
                  + " ".join(f"-r {r}" for r in BUDGET_RECIPES),),
        why="every recipe of every format is 17 exports (~6+ min); narrowed with -r to 6 (~2 min): "
            "fp32 + int8da-w4g32 for ExecuTorch/XNNPACK (int8da-w4g32 quantizes SkipNet-M's "
            "Linear(480, 320); a recipe that does not apply must be a 'not applicable' row and "
            "the build goes on, checked whenever one shows up), fp32 + fp16 for LiteRT, fp16 "
            "for both Core ML formats: the budget picks between two candidates in two formats"),
    "pocket build skipnet_m -t android -r int8-static --calib-data my_images/ --calib-samples 200": Instead(
        commands=(("pocket build --model-file my_net.py:build --input-shape 1,3,224,224 "
                   "-t android -r int8-static --calib-data my_images/ --calib-samples 200"),),
        why="SkipNet-M's two int8-static exports take ~110 s, and its int8-static (calibrated on "
            "its own split) is in the shared skipnet_m-android; the calibration folder is read "
            "the same way for any model, so the README's my_net is calibrated on my_images/ "
            "(the manifest must name the folder)"),
    "pocket info dist/skipnet_m-android [--json]": Instead(
        commands=("pocket info dist/skipnet_m-android", "pocket info dist/skipnet_m-android --json"),
        why="placeholder: [--json] is optional, both forms run"),
    "pocket --debug ...": Instead(
        commands=("pocket --debug run dist/skipnet_m-android digit.png -a no-such-artifact",),
        exit_code=2,
        why="placeholder for any command: run on a failing one, which must print the traceback "
            "and then the one-line error"),
    "pocket train epe_edanet --seed 1 --out my.safetensors": Instead(
        commands=("pocket train epe_edanet --seed 1 --out my.safetensors --steps 2",),
        why="full training takes hours (the committed weights are its result); --steps caps the "
            "optimiser steps, the weights file is still written and must load into the model"),
    "pocket bench dist/skipnet_m-android": Instead(
        commands=("pocket bench dist/skipnet_m-android --iters 5",),
        why="200 timed rounds of every artifact, eager and ONNX Runtime measure nothing the "
            "suite asserts; 5 rounds exercise the same path"),
    "pocket bench dist/skipnet_m-android --threads 1,2 --json": Instead(
        commands=("pocket bench dist/skipnet_m-android --threads 1,2 --json --iters 5",),
        why="as above, for two thread counts"),
    "pocket bench dist/skipnet_m-android -a xnnpack.int8 --profile --roofline --iters 1000": Instead(
        commands=("pocket bench dist/skipnet_m-android -a xnnpack.int8 --profile --roofline --iters 5",),
        why="1000 timed rounds: timing, not correctness; 5 rounds exercise the same path"),
}


EXAMPLES = parse(README.read_text(encoding="utf-8"))
STEPS = plan(EXAMPLES, INSTEAD)


# --- the README's folder -------------------------------------------------------------------

class ReadmeFolder:
    """The working folder the README's examples assume; shared bundles copied in on demand
    (copies: `pocket bench` writes next to a bundle and into its report.md)."""

    def __init__(self, path: Path, shared_bundle) -> None:
        self.path = path
        self._shared = shared_bundle

    def need(self, name: str) -> Path:
        target = self.path / "dist" / name
        if not target.exists():
            shutil.copytree(self._shared(name), target, symlinks=True)
        return target

    def prepare(self, step: Step) -> None:
        """Put the bundles `step` reads in dist/: shared ones copied, others built by the
        README example that builds them (when this step runs alone, e.g. with -k)."""
        text = step.example.text + " " + " ".join(" ".join(argv) for argv in step.commands)
        for name in dict.fromkeys(re.findall(r"dist/([\w.-]+)", text)):
            if name in BUNDLES:
                self.need(name)
            elif not (self.path / "dist" / name).exists():
                maker = next((s for s in STEPS[:STEPS.index(step)] if any(
                    _builds(argv) == Path("dist", name) for argv in s.commands)), None)
                if maker is not None:
                    run_step(maker, self.path)
        if step.shared:
            self.need(step.shared)


def _write_fixtures(root: Path) -> None:
    import torch
    from PIL import Image
    from safetensors.torch import save_file

    from models.photos import load_photo

    shutil.copy(DIGIT, root / "digit.png")
    Image.fromarray(load_photo("coffee")).save(root / "photo.jpg", quality=92)    # 600x400
    (root / "my_images").mkdir()
    for digit in sorted((FIXTURES / "digits").glob("*.png")):
        shutil.copy(digit, root / "my_images" / digit.name)
    shutil.copy(FIXTURES / "readme" / "my_net.py", root / "my_net.py")
    (root / "labels.txt").write_text("\n".join(MY_NET_LABELS) + "\n")
    torch.manual_seed(1)
    module = runpy.run_path(str(root / "my_net.py"))["build"]()
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, root / "my_net.safetensors")
    shutil.copy(FIXTURES / "user_models" / "corpus" / "two_input.py", root / "fusion.py")
    mask = np.zeros((1, 1, 32, 32), np.float32)
    mask[..., 8:24, 8:24] = 1.0
    np.save(root / "mask.npy", mask)


@pytest.fixture(scope="module")
def readme_folder(tmp_path_factory, shared_bundle) -> ReadmeFolder:
    root = tmp_path_factory.mktemp("readme")
    _write_fixtures(root)
    (root / "dist").mkdir()
    return ReadmeFolder(root, shared_bundle)


# --- what a command's output must show ---------------------------------------------------

FLAGS = {"--json", "--debug", "--profile", "--roofline", "--no-overhead", "--no-plots"}


def _options(argv: tuple[str, ...]) -> tuple[list[str], dict[str, list[str]]]:
    """(positional arguments, option -> values) of a `pocket SUBCOMMAND ...` argv."""
    short = {"-t": "--target", "-r": "--recipe", "-o": "--out", "-a": "--artifact"}
    positional, options, i = [], {}, 0
    while i < len(argv):
        word = argv[i]
        if word.startswith("-"):
            name, _, value = word.partition("=")
            name = short.get(name, name)
            if name in FLAGS:
                options.setdefault(name, []).append("")
            else:
                if not value:
                    i += 1
                    value = argv[i]
                options.setdefault(name, []).append(value)
        else:
            positional.append(word)
        i += 1
    return positional, options


def check_pocket(argv: tuple[str, ...], proc, cwd: Path, exit_code: int = 0) -> None:
    """Exit code, then something meaningful in the output, per subcommand."""
    shown = f"pocket {' '.join(argv)} (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert proc.returncode == exit_code, shown
    positional, options = _options(argv)
    if "--debug" in options:
        assert "Traceback (most recent call last)" in proc.stderr, shown
        assert proc.stderr.strip().splitlines()[-1].startswith("error: "), shown
        return
    command, rest = positional[0], positional[1:]
    check = {"list": _check_list, "build": _check_build, "info": _check_info, "verify": _check_verify,
             "run": _check_run, "train": _check_train, "bench": _check_bench}.get(command)
    assert proc.stdout.strip() or proc.stderr.strip(), shown
    if check is not None:
        check(rest, options, proc, cwd)


def _check_list(rest, options, proc, cwd):
    from models import registry
    from sdk_builder.formats import FORMATS

    for name in [*registry.names(), *(f.name for f in FORMATS)]:
        assert name in proc.stdout, name


def _bundle_of_build(rest, options, cwd) -> Path:
    model = rest[0] if rest else Path(options["--model-file"][0].rpartition(":")[0]).stem
    target = options.get("--target", ["android"])[0]
    return cwd / options.get("--out", ["dist"])[0] / f"{model}-{target}"


def _builds(argv: tuple[str, ...]) -> Path | None:
    """The bundle folder (relative) a `pocket build` argv writes, else None."""
    positional, options = _options(argv)
    return _bundle_of_build(positional[1:], options, Path()) if positional[:1] == ["build"] else None


def _check_build(rest, options, proc, cwd):
    from runtime_py import manifest as mf
    from sdk_builder.quantize.budget import candidates

    bundle = _bundle_of_build(rest, options, cwd)
    manifest = mf.read(bundle)
    assert manifest["artifacts"] and not manifest["skipped"], manifest["skipped"]
    for entry in manifest["artifacts"]:
        assert entry["verification"]["status"].startswith("passed"), (entry["file"], entry["verification"])
        assert mf.resolve(bundle, entry["file"]).exists(), entry["file"]
    built = {(a["format"], a["recipe"]) for a in manifest["artifacts"]}
    target, recipes = options.get("--target", ["android"])[0], options.get("--recipe", [])
    planned = {(f.name, r) for f, r in candidates(target, recipes, "--max-drop" in options)}
    if "--max-drop" in options:
        _check_budget(bundle, manifest, planned, float(options["--max-drop"][0]))
    else:
        assert built == planned, (built, planned)
    if "--calib-data" in options:
        assert Path(options["--calib-data"][0]).name in manifest["calibration"], manifest["calibration"]
    if "--labels" in options:
        labels = (cwd / options["--labels"][0]).read_text().split()
        assert (bundle / "labels.txt").read_text().split() == labels
    if "--weights" in options:
        weights = (cwd / options["--weights"][0]).read_bytes()
        assert manifest["model"]["weights_sha256"] == hashlib.sha256(weights).hexdigest()
    if len(options.get("--input-shape", [])) > 1:
        assert len(manifest["extra_inputs"]) == len(options["--input-shape"]) - 1, manifest["extra_inputs"]


def _check_budget(bundle: Path, manifest: dict, planned: set, max_drop: float) -> None:
    """One artifact kept per format, every planned recipe a row with why; a recipe that does
    not apply is a row saying so, not an abort."""
    tried = manifest["selection"]["tried"]
    assert {(t["format"], t["recipe"]) for t in tried} == planned, tried
    assert all(t["why"] for t in tried), tried
    kept = [t for t in tried if t["kept"]]
    assert sorted(t["format"] for t in kept) == sorted({f for f, _ in planned}), kept
    assert all(t["drop_points"] is not None and t["drop_points"] <= max_drop for t in kept), kept
    assert [a["file"] for a in manifest["artifacts"]] == [t["file"] for t in kept]
    report = (bundle / "report.md").read_text(encoding="utf-8")
    for t in tried:
        assert t["recipe"] in report, t["recipe"]
    for t in tried:
        if not t.get("applicable", True):
            assert not t["kept"] and "not applicable" in t["why"], t
            assert "not applicable" in report


def _check_info(rest, options, proc, cwd):
    from runtime_py import manifest as mf

    manifest = mf.read(cwd / rest[0])
    if "--json" in options:
        assert json.loads(proc.stdout) == manifest
    else:
        assert manifest["model"]["name"] in proc.stdout
        for entry in manifest["artifacts"]:
            assert entry["file"] in proc.stdout, entry["file"]


def _check_verify(rest, options, proc, cwd):
    assert proc.stdout.strip().endswith("verified"), proc.stdout


def _check_run(rest, options, proc, cwd):
    from PIL import Image

    from runtime_py import manifest as mf

    bundle, image = cwd / rest[0], cwd / rest[1]
    manifest = mf.read(bundle)
    wanted = options.get("--artifact", [None])[0]
    if "--json" in options:
        result = json.loads(proc.stdout)
        artifact = result["artifact"]
        if manifest["model"]["task"] == "classification":
            assert result["label"] in (bundle / "labels.txt").read_text().split(), result
            assert 0.0 < result["score"] <= 1.0, result
            if image.name == "digit.png":
                assert result["label"] == "7", result
        elif manifest["postprocess"]["kind"] == "segment":
            assert sum(c["area"] for c in result["classes"]) == pytest.approx(1.0), result
    else:
        artifact, *answer = proc.stdout.splitlines()
        assert answer, proc.stdout
        if manifest["model"]["task"] == "classification" and image.name == "digit.png":
            assert answer[0].split()[0] == "7", proc.stdout               # the top label first
        if manifest["model"]["task"] == "segmentation":                    # class areas
            areas = [float(a) for a in re.findall(r"([\d.]+)% of the image", proc.stdout)]
            assert areas and sum(areas) == pytest.approx(100.0, abs=0.1), proc.stdout
    if wanted:
        assert all(part in artifact for part in wanted.split(".")), (wanted, artifact)
    if "--out" in options:
        width, height = Image.open(image).size
        drawn = Image.open(cwd / options["--out"][0])
        assert drawn.format == "PNG", drawn.format
        assert drawn.width >= 2 * width and drawn.height >= height, (drawn.size, (width, height))
    if "--extra-input" in options:
        assert len(options["--extra-input"]) == len(manifest["extra_inputs"])


def _check_train(rest, options, proc, cwd):
    from models.registry import get
    from models.weights_io import load_weights

    out = cwd / options["--out"][0]
    load_weights(get(rest[0]).build(), out)               # every key and shape checked
    assert "held-out" in proc.stdout + proc.stderr


def _check_bench(rest, options, proc, cwd):
    from sdk_builder import bench as sb

    bundle = cwd / rest[0]
    out = cwd / options["--out"][0] if "--out" in options else sb.default_out(bundle)
    data = json.loads(out.read_text())
    sb.validate(data)
    if "--json" in options:
        assert json.loads(proc.stdout) == data
    threads = [int(t) for t in options.get("--threads", ["1"])[0].split(",")]
    assert [run["threads"] for run in data["runs"]] == threads, data["runs"]
    for run in data["runs"]:
        names = [row["name"] for row in run["rows"]]
        assert {"eager", "onnxruntime"} <= set(names), names
        measured = [n for n in names if n not in ("eager", "onnxruntime")]
        assert measured, names
        for wanted in options.get("--artifact", []):
            assert all(all(p in n for p in wanted.split(".")) for n in measured), (wanted, measured)
    if "--profile" in options:
        assert data["profiles"], data.get("profiles")
    if "--roofline" in options:
        assert data["roofline"]["rows"], data.get("roofline")


# --- python blocks -------------------------------------------------------------------------

def run_python(code: str, cwd: Path) -> tuple[dict, list[tuple[str, object]]]:
    """Execute a README python block in `cwd` as a REPL would show it: each print()ed value
    and each bare expression that is not a call (`seg["classes"]`) is shown. Returns the
    namespace and the (source, value) pairs shown."""
    shown: list[tuple[str, object]] = []
    source = ""
    namespace = {"__name__": "__readme__",
                 "print": lambda *values, **_: shown.extend((source, v) for v in values)}
    for node in ast.parse(code).body:
        source = ast.unparse(node)
        if isinstance(node, ast.Expr) and not isinstance(node.value, ast.Call):
            shown.append((source, eval(compile(ast.Expression(node.value), "README.md", "eval"), namespace)))
        else:
            exec(compile(ast.Module([node], type_ignores=[]), "README.md", "exec"), namespace)
    return namespace, shown


def check_python(shown: list[tuple[str, object]], written: list[Path], cwd: Path) -> None:
    """What the README's python shows must exist and mean what its comments say."""
    from PIL import Image

    photo = Image.open(cwd / "photo.jpg") if (cwd / "photo.jpg").exists() else None
    for source, value in shown:
        assert value is not None, source
        if isinstance(value, (list, dict, np.ndarray)):
            assert len(value), source
        if isinstance(value, dict) and "label" in value:                        # digit.png is a 7
            assert value["label"] == "7" and 0.0 < value["score"] <= 1.0, (source, value)
        if "class_map" in source:                                              # the photo's own size
            assert value.dtype == np.uint8 and value.shape == (photo.height, photo.width), (source, value.shape)
        if "classes" in source:
            assert sum(c["area"] for c in value) == pytest.approx(1.0), (source, value)
        if "patch_routes" in source:
            assert value.shape == (8, 8) and set(np.unique(value)) <= {0, 1, 2}, (source, value)
    for path in written:
        if path.suffix.lower() in (".png", ".jpg"):
            drawn = Image.open(path)
            assert drawn.width >= photo.width and drawn.height >= photo.height, drawn.size


# --- the tests -----------------------------------------------------------------------------

@dataclass
class _Done:
    """A finished `pocket build` of a shared bundle, as check_pocket sees a process."""
    returncode: int = 0
    stdout: str = "built by tests/bundles.py"
    stderr: str = ""


def run_step(step: Step, folder: Path) -> None:
    """Run one README example (or its stand-in) in `folder` and check what it shows."""
    if step.example.kind == "python":
        before = set(folder.rglob("*"))
        _, shown = run_python(step.example.text, folder)
        check_python(shown, sorted(set(folder.rglob("*")) - before), folder)
        return
    if step.shared:                        # built by tests/bundles.py with these arguments
        argv = ("build", *BUNDLES[step.shared])
        check_pocket(argv, _Done(), folder)
        if step.why:                       # a stand-in: it must hold what the README's builds
            _check_covers(tuple(shlex.split(step.example.text)[1:]), folder / "dist" / step.shared)
    for argv in step.commands:
        check_pocket(argv, pocket(*argv, cwd=folder), folder, step.exit_code)


def _check_covers(readme_argv: tuple[str, ...], bundle: Path) -> None:
    from runtime_py import manifest as mf
    from sdk_builder.quantize.budget import candidates

    _, options = _options(readme_argv)
    planned = {(f.name, r) for f, r in candidates(options.get("--target", ["android"])[0],
                                                  options.get("--recipe", []), False)}
    built = {(a["format"], a["recipe"]) for a in mf.read(bundle)["artifacts"]}
    assert planned <= built, (planned - built)


@pytest.mark.parametrize("step", STEPS, ids=[s.id for s in STEPS])
def test_readme_example_runs(step, readme_folder, monkeypatch):
    readme_folder.prepare(step)
    monkeypatch.chdir(readme_folder.path)
    run_step(step, readme_folder.path)


def test_the_readme_has_examples_and_the_table_only_readme_commands():
    kinds = [ex.kind for ex in EXAMPLES]
    assert kinds.count("pocket") >= 10 and kinds.count("python") >= 1, EXAMPLES
    assert not stale(EXAMPLES, INSTEAD), f"INSTEAD rows the README no longer has: {stale(EXAMPLES, INSTEAD)}"
    for step in STEPS:
        assert step.commands or step.shared or step.example.kind == "python", step


def test_an_example_that_does_not_run_as_written_fails(tmp_path):
    from tests.unit.test_readme_parser import FAKE_README

    steps = {s.example.key: s for s in plan(parse(FAKE_README), {})}
    for key in ("pocket frobnicate dist/toy-android",            # no such command
                "pocket info dist/toy-android [--json]",          # a placeholder left untabled
                "python: undefined_name"):
        with pytest.raises((AssertionError, NameError)):
            run_step(steps[key], tmp_path)
    run_step(steps["python: x = 1"], tmp_path)                    # and one that runs passes

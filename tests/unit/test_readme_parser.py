"""The README example parser and its table, on a fabricated README (the examples themselves
run in tests/export/test_readme_examples.py)."""
from __future__ import annotations

from tests.bundles import BUNDLES
from tests.tools.readme_examples import Example, Instead, parse, plan, stale

FAKE_README = """\
Some prose with `pocket run dist/x a.png` inline (not an example block).

```bash
make build   # not pocket
pocket list                       # a comment
pocket build --model-file my_net.py:build \\
    --input-shape 1,3,8,8 --target all
pocket info dist/toy-android [--json]
  pocket verify dist/toy-android
pocket frobnicate dist/toy-android
```

```
pocket never-run   # an untyped block is not an example
```

```console
$ pocket run dist/toy-android digit.png --json
```

```python
x = 1
print(x)
```

```python
undefined_name
```
"""


def test_parse_finds_every_pocket_line_and_python_block():
    examples = parse(FAKE_README)
    assert [(ex.kind, ex.key, ex.line) for ex in examples] == [
        ("pocket", "pocket list", 5),
        ("pocket", "pocket build --model-file my_net.py:build --input-shape 1,3,8,8 --target all", 6),
        ("pocket", "pocket info dist/toy-android [--json]", 8),
        ("pocket", "pocket verify dist/toy-android", 9),
        ("pocket", "pocket frobnicate dist/toy-android", 10),
        ("pocket", "pocket run dist/toy-android digit.png --json", 18),
        ("python", "python: x = 1", 22),
        ("python", "python: undefined_name", 27),
    ]


def test_an_example_outside_the_table_runs_as_written_and_nothing_is_dropped():
    table = {"pocket info dist/toy-android [--json]": Instead(
                 commands=("pocket info dist/toy-android", "pocket info dist/toy-android --json"), why="placeholder"),
             "pocket gone": Instead(commands=("pocket list",), why="an example the README lost")}
    examples = parse(FAKE_README)
    steps = plan(examples, table)
    assert [s.example for s in steps] == examples                 # one step per example
    by_key = {s.example.key: s for s in steps}
    assert by_key["pocket frobnicate dist/toy-android"].commands == (("frobnicate", "dist/toy-android"),)
    assert by_key["pocket frobnicate dist/toy-android"].why is None
    assert by_key["pocket info dist/toy-android [--json]"].commands == (
        ("info", "dist/toy-android"), ("info", "dist/toy-android", "--json"))
    assert by_key["python: undefined_name"].commands == () and by_key["python: undefined_name"].why is None
    assert stale(examples, table) == ["pocket gone"]
    # a README build with a shared bundle's arguments is that bundle
    [step] = plan([Example("pocket", "pocket build " + " ".join(BUNDLES["skipnet_m-android"]), 1)], {})
    assert step.shared == "skipnet_m-android" and not step.commands

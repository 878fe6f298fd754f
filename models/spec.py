"""What a zoo model declares about itself. Training, evaluation, the card, the golden test,
the builder and `pocket list` read these records; nothing else lists models or their facts."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from models.tasks import Task, get_task

WEIGHTS_DIR = Path(__file__).parent / "weights"

Tensors = tuple[Any, Any]     # (inputs [N, ...] preprocessed as the manifest says, targets [N, ...])


@dataclass(frozen=True)
class InputSpec:
    """How the model wants its input tensor; copied verbatim into the manifest."""

    shape: tuple[int, ...]
    layout: str = "NCHW"
    color: str = "RGB"
    range: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    dtype: str = "float32"
    normalize_in_graph: bool = False

    def manifest(self) -> dict:
        """The manifest's `input` section: what a runtime needs to build the tensor from an image."""
        return {"name": "input", "shape": list(self.shape), "dtype": self.dtype, "layout": self.layout,
                "color": self.color, "range": list(self.range), "mean": list(self.mean),
                "std": list(self.std), "normalize_in_graph": self.normalize_in_graph,
                "resize": "bilinear"}


@dataclass(frozen=True)
class TensorInputSpec:
    """A further model input after the image: a float32 tensor the caller passes as it is
    (a mask, a second view, a vector); no preprocessing."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"

    def manifest(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class OutputSpec:
    name: str
    shape: tuple[int, ...]
    meaning: str
    exact: bool = False       # discrete values (e.g. patch routes): artifacts must reproduce them exactly


@dataclass(frozen=True)
class EvalData:
    """A held-out split: inputs already preprocessed as the manifest says."""

    inputs: Any          # torch.Tensor [N, *input.shape[1:]]
    targets: Any         # torch.Tensor [N, ...]
    metric: str          # the task's headline metric, e.g. "top1_accuracy"
    description: str = ""


@dataclass(frozen=True)
class DataSpec:
    """A zoo model's data: train and held-out splits; calibration is drawn from train only."""

    train: Callable[[], Tensors]
    heldout: Callable[[], Tensors]
    description: str                          # card markdown: source, content, split, seeds
    preprocessing: str                        # card markdown: image -> tensor, as at run time
    augment: Callable[[Any, Any, Any], Tensors] | None = None   # (x, y, torch.Generator) -> (x, y)

    def calibration(self, n: int = 128) -> list:
        """The first `n` train inputs as batch-1 tensors (never held-out data)."""
        inputs, _ = self.train()
        if not 0 < n <= len(inputs):
            raise ValueError(f"calibration size must be in 1..{len(inputs)}, got {n}")
        return [inputs[i:i + 1].clone() for i in range(n)]


@dataclass(frozen=True)
class Variant:
    """One arm of the card's ablation: a loss of this model, or another zoo model trained
    with this model's recipe and seeds."""

    key: str
    label: str
    loss: str | None = None          # a key of TrainSpec.losses (None: the first)
    model: str | None = None         # another registered model (None: this one)


@dataclass(frozen=True)
class TrainSpec:
    """The training recipe; `losses` map (outputs of forward, targets) -> scalar loss."""

    losses: dict[str, Callable[[Any, Any], Any]]
    forward: Callable[[Any, Any], Any] | None = None    # (module, x) -> outputs; default module(x)
    variants: tuple[Variant, ...] = ()                  # the first is the committed one
    epochs: int = 12
    batch_size: int = 128
    lr: float = 4e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    eval_every: int = 1                                  # epochs between held-out evaluations


@dataclass(frozen=True)
class CardSpec:
    """The parts of a model card that are prose; every number comes from a run."""

    paper: str
    architecture: str
    limitations: tuple[str, ...] = ()
    analysis: Callable[[Any, "ModelSpec"], dict] | None = None     # extra numbers, at card time
    render_analysis: Callable[[dict], list[str]] | None = None     # their markdown lines


@dataclass(frozen=True)
class ModelSpec:
    build: Callable[[], Any]
    task: str
    input: InputSpec
    outputs: tuple[OutputSpec, ...]
    extra_inputs: tuple[TensorInputSpec, ...] = ()   # forward's arguments after the image
    postprocess: dict | None = None          # what differs from the task's postprocess defaults
    weights: str | None = None
    labels: list[str] | None = None
    data: DataSpec | None = None
    training: TrainSpec | None = None
    card: CardSpec | None = None
    keep_float: tuple[type, ...] = ()        # module types int8 recipes leave in float
    golden_cases: int = 8                    # held-out samples in the golden fixture
    calibration: Callable[[int], list] | None = None
    evaluation: Callable[[], EvalData] | None = None
    description: str = ""
    notes: tuple[str, ...] = ()              # what the builder corrected (user models), shown at build
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        task = get_task(self.task)
        object.__setattr__(self, "postprocess", task.default_postprocess() | (self.postprocess or {}))
        if self.data is not None:
            if self.calibration is None:
                object.__setattr__(self, "calibration", self.data.calibration)
            if self.evaluation is None:
                object.__setattr__(self, "evaluation", self._heldout_eval)

    @property
    def input_shapes(self) -> list[tuple[int, ...]]:
        """Every forward argument's shape: the image first, then the extra inputs."""
        return [tuple(self.input.shape), *(tuple(e.shape) for e in self.extra_inputs)]

    @property
    def task_row(self) -> Task:
        return get_task(self.task)

    def _heldout_eval(self) -> EvalData:
        inputs, targets = self.data.heldout()
        return EvalData(inputs, targets, self.task_row.metric, f"{len(inputs)} held-out samples")

    def weights_path(self) -> Path | None:
        return WEIGHTS_DIR / self.weights if self.weights else None

    def load(self, weights: str | Path | None = None):
        """Build the module in eval mode with its weights (the committed ones by default)."""
        from models.weights_io import load_weights

        module = self.build()
        path = Path(weights) if weights else self.weights_path()
        if path is not None:
            load_weights(module, path)
        return module.eval()

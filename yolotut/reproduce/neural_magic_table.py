"""Neural Magic's YOLOv5 figures re-measured at the post's own conditions: YOLOv5s and
YOLOv5l, 80 classes, 640 px, batch 1 and batch 64, on this machine's cores.

Speed depends on the architecture, the input size, the batch, the precision and where
the zeros are, not on the values of the weights. So the models here start from fresh
weights (the COCO checkpoints cannot be downloaded offline) and carry the zeros that
Neural Magic's own recipes put into them:

* **models** (:func:`table_models`), per architecture: dense fp32; dense INT8 (the QAT
  export of calibrated fake-quant observers, no pruning); pruned fp32 and pruned INT8 with
  the per-layer targets and ``[1, 4]`` blocks of Neural Magic's recipe
  (``yolotut/recipes/neuralmagic-yolov5{s,l}-pruned-quantized.yaml``, only the stem kept
  dense); and this project's own levers: channel thinning + INT8, with and without those
  zeros. :mod:`yolotut.inference.sparse_models` builds, exports and caches each file and
  checks every layer's sparsity in it;
* **setups** (:func:`table_setups`): the engines each row of the post compares: DeepSparse
  for every model at batch 1 and 64; ONNX Runtime for dense fp32 and PyTorch for the
  pruned INT8 model (fake-quantized, as QAT trains it) at batch 1;
* **speed** (:func:`measure`): per architecture and batch size, every setup once per
  round in a rotated order, timed while the machine is quiet
  (:func:`~yolotut.inference.quiet.measure_quietly`); a round's figure is
  batch x 1000 / median latency, the result the median over rounds with its min-max;
* **ratios** (:func:`ratio_rows`): each comparison of the post computed round by round
  from setups timed in the same round, median and min-max over rounds.

:func:`result_records` turns the payload into the records the claims checker reads
(notebook 10, ``benchmarks/neural_magic_table.py``).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yolotut import hardware
from yolotut.inference.quiet import QuietPolicy, interleaved_rounds
from yolotut.inference.sparse_models import ModelSpec, Point, build_torch_model, ensure_model
from yolotut.inference.sparsify import SparsityConfig
from yolotut.models.thinning_presets import STRIDED_C3_BOTTLENECKS
from yolotut.progress import tqdm
from yolotut.reproduce.registry import Claim, load_claims

if TYPE_CHECKING:
    import plotly.graph_objects as go
    import torch

ARCHS = ("yolov5s", "yolov5l")
IMGSZ = 640
NUM_CLASSES = 80  # COCO's
SEED = 0
# A YOLOv5l DeepSparse engine at batch 64 and 640 px holds about 3 GB (measured: 2.3-2.9 GB
# more resident memory each); compiling one takes about 11 s on 2 cores.
KEEP_LARGE = 2
WEIGHTS = ("fresh initialisation (seed 0) with the recipe's zeros put in by magnitude: the COCO checkpoints "
           "cannot be downloaded here, and speed does not depend on the weights' values")


def nm_recipe(arch: str) -> str:
    """The file of Neural Magic's pruned + quantized recipe for ``arch`` (v6.x parameter names)."""
    return f"neuralmagic-{arch}-pruned-quantized.yaml"


@dataclass(frozen=True)
class TableModel:
    """One model file of the table."""

    arch: str  # yolov5s / yolov5l
    variant: str  # the registry's vocabulary: dense, quantized, pruned, pruned-quantized, ...
    precision: str  # fp32 / int8
    point: Point

    @property
    def key(self) -> str:
        return f"{self.arch}-{self.variant}"

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(self.arch.removeprefix("yolov5"), "silu", num_classes=NUM_CLASSES, imgsz=IMGSZ)


def table_models(arch: str) -> list[TableModel]:
    """Dense fp32, dense INT8, Neural Magic's pruned fp32 and pruned INT8, and the project's
    thinned INT8 with and without Neural Magic's zeros, for ``arch``."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; Neural Magic's table has {', '.join(ARCHS)}")
    dense, zeros = SparsityConfig.dense_model(), SparsityConfig.from_recipe_file(nm_recipe(arch))
    return [
        TableModel(arch, "dense", "fp32", Point("dense fp32", "dense", dense, quantized=False, method="pipeline")),
        TableModel(arch, "quantized", "int8", Point("dense INT8", "dense", dense, method="pipeline")),
        TableModel(arch, "pruned", "fp32", Point("pruned fp32", "pruned", zeros, quantized=False, method="pipeline")),
        # The zeros written into the dense INT8 export: the same file as pruning, calibrating
        # and exporting again, up to rounding ties (yolotut.inference.sparse_models).
        TableModel(arch, "pruned-quantized", "int8", Point("pruned INT8", "pruned", zeros)),
        TableModel(arch, "thinned-quantized", "int8",
                   Point("thinned INT8", "thinned", dense, thinning=STRIDED_C3_BOTTLENECKS, method="pipeline")),
        TableModel(arch, "thinned-pruned-quantized", "int8",
                   Point("thinned + pruned INT8", "thinned", zeros, thinning=STRIDED_C3_BOTTLENECKS, method="pipeline")),
    ]


def build_models(archs: Sequence[str], model_dir: str | Path, progress: bool = True) -> dict[str, dict[str, Any]]:
    """Every model file of the table (exported now, or from the cache), by key: path,
    conditions and the per-layer sparsity measured in the file."""
    wanted = [m for arch in archs for m in table_models(arch)]
    built: dict[str, dict[str, Any]] = {}
    for model in tqdm(wanted, desc="models", disable=not progress):
        path, info = ensure_model(model.spec, model.point, Path(model_dir), seed=SEED)
        built[model.key] = {"arch": model.arch, "variant": model.variant, "precision": model.precision,
                            "label": model.point.label, "path": str(path), "conv_sparsity": info["onnx"]["conv_sparsity"],
                            "layers": info["onnx"]["layers"], "sparsity_config": model.point.config.to_dict(),
                            "thinning": model.point.thinning.to_dict() if model.point.thinning else None}
    return built


def torch_model(arch: str, variant: str) -> torch.nn.Module:
    """The torch model behind a table file (fake-quantized for INT8), for the PyTorch rows:
    the same per-layer zeros, put in before calibration instead of into the export."""
    model = next(m for m in table_models(arch) if m.variant == variant)
    return build_torch_model(model.spec, model.point, seed=SEED)[0]


@dataclass(frozen=True)
class Setup:
    """One model on one engine at one batch size."""

    model: str  # TableModel.key
    engine: str
    batch_size: int

    @property
    def label(self) -> str:
        return f"{self.model} · {self.engine} · b{self.batch_size}"


def table_setups(archs: Sequence[str], batch_sizes: Sequence[int] = (1, 64),
                 big_batch_variants: Sequence[str] | None = None) -> list[Setup]:
    """What the post's rows compare: every model on DeepSparse at each batch size (above
    batch 1 only ``big_batch_variants``, when given), dense fp32 on ONNX Runtime and
    pruned INT8 on PyTorch at batch 1."""
    setups = []
    for arch in archs:
        for batch in batch_sizes:
            setups += [Setup(m.key, "deepsparse", batch) for m in table_models(arch)
                       if batch == 1 or big_batch_variants is None or m.variant in big_batch_variants]
            if batch == 1:
                setups += [Setup(f"{arch}-dense", "onnxruntime", 1), Setup(f"{arch}-pruned-quantized", "pytorch", 1)]
    return setups


@dataclass
class TableSettings:
    archs: tuple[str, ...] = ARCHS
    batch_sizes: tuple[int, ...] = (1, 64)
    rounds: int = 3
    warmup: int = 10
    iterations: int = 30
    big_warmup: int = 1
    big_iterations: int = 3
    big_batch_variants: tuple[str, ...] | None = None  # None: every model at every batch size
    cores: int | None = None
    profile: str = "full"
    quiet: QuietPolicy = field(default_factory=QuietPolicy)


def _factory(setup: Setup, models: Mapping[str, Mapping[str, Any]], cores: int | None,
             torch_models: dict[str, Any]) -> Callable[[], Any]:
    from yolotut.inference.engines import create_engine

    info = models[setup.model]
    if setup.engine == "pytorch":
        if setup.model not in torch_models:
            torch_models[setup.model] = torch_model(info["arch"], info["variant"])
        return lambda: create_engine(torch_models[setup.model], "pytorch", batch_size=setup.batch_size, cores=cores, imgsz=IMGSZ)
    return lambda: create_engine(info["path"], setup.engine, batch_size=setup.batch_size, cores=cores, imgsz=IMGSZ)


def measure(setups: Sequence[Setup], models: Mapping[str, Mapping[str, Any]], settings: TableSettings,
            progress: bool = True) -> dict[str, dict[str, Any]]:
    """Items/s of every setup, by label: per round, and the median and min-max over rounds.

    Setups of one architecture and batch size share their rounds, in a rotated order.
    Engines are built once, except where more than :data:`KEEP_LARGE` large-batch engines
    would be alive together: those are built for each measurement and freed after it.
    """
    torch_models: dict[str, Any] = {}
    groups: dict[tuple[str, int], list[Setup]] = {}
    for setup in setups:
        groups.setdefault((models[setup.model]["arch"], setup.batch_size), []).append(setup)
    out: dict[str, dict[str, Any]] = {}
    bar = tqdm(total=settings.rounds * len(setups), desc="rounds", disable=not progress)
    for (arch, batch), group in groups.items():
        bar.set_postfix(arch=arch, batch=batch)
        warmup, iterations = (settings.warmup, settings.iterations) if batch == 1 else (settings.big_warmup, settings.big_iterations)
        timed = interleaved_rounds({s.label: _factory(s, models, settings.cores, torch_models) for s in group},
                                   settings.rounds, warmup, iterations, settings.quiet,
                                   keep=batch == 1 or len(group) <= KEEP_LARGE, on_measured=bar.update)
        for label, row in timed.items():
            speeds = row["rounds"]
            out[label] = {**row, "batch_size": batch, "items_per_sec": statistics.median(speeds),
                          "items_per_sec_min": min(speeds), "items_per_sec_max": max(speeds),
                          "latency_ms_median": statistics.median(row["latency_ms_median"]),
                          "rounds": [round(v, 3) for v in speeds]}
        gc.collect()
    bar.close()
    return out


def run_table(settings: TableSettings, model_dir: str | Path, models: Mapping[str, Mapping[str, Any]] | None = None,
              progress: bool = True) -> dict[str, Any]:
    """Build the models (unless given, from :func:`build_models`), time every setup; the
    payload :func:`result_records` and :func:`ratio_rows` read (and
    ``benchmarks/neural_magic_table.py`` writes)."""
    start = time.perf_counter()
    models = dict(models) if models is not None else build_models(settings.archs, model_dir, progress)
    built = time.perf_counter()
    setups = table_setups(settings.archs, settings.batch_sizes, settings.big_batch_variants)
    speed = measure(setups, models, settings, progress)
    return {
        "hardware": hardware.cpu_fingerprint(),
        "versions": hardware.package_versions(),
        "settings": {**asdict(settings), "quiet": asdict(settings.quiet)},
        "weights": WEIGHTS,
        "models": models,
        "setups": [{**asdict(s), "label": s.label} for s in setups],
        "speed": speed,
        "seconds": {"models": built - start, "timing": time.perf_counter() - built},
    }


# --- reading the payload ----------------------------------------------------------------------


def _timing(payload: Mapping[str, Any], setup: Mapping[str, Any], row: Mapping[str, Any]) -> str:
    settings = payload["settings"]
    batch = setup["batch_size"]
    warmup, iterations = (settings["warmup"], settings["iterations"]) if batch == 1 else (settings["big_warmup"], settings["big_iterations"])
    unit = "runs" if batch == 1 else f"batches of {batch}"
    model = payload["models"][setup["model"]]
    return (f"{model['arch']}, {IMGSZ} px, batch {batch}, {setup['engine']}: median of {len(row['rounds'])} interleaved rounds "
            f"({row['items_per_sec_min']:.3g}-{row['items_per_sec_max']:.3g} items/s), {warmup} warm-up + {iterations} timed "
            f"{unit} each, {settings['profile']} profile")


def result_records(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One items/s record per setup, for the claims checker (``<results>/NN_name.json``)."""
    records = []
    for setup in payload["setups"]:
        row = payload["speed"].get(setup["label"])
        if row is None:
            continue
        model = payload["models"][setup["model"]]
        info = row.get("engine_info", {})
        records.append({
            "id": f"nm-{setup['model']}-{setup['engine']}-b{setup['batch_size']}",
            "arch": model["arch"], "variant": model["variant"], "precision": model["precision"],
            "engine": setup["engine"], "batch_size": setup["batch_size"], "imgsz": IMGSZ, "cores": info.get("cores"),
            "measurement": "engine-only", "items_per_sec": row["items_per_sec"],
            "items_per_sec_min": row["items_per_sec_min"], "items_per_sec_max": row["items_per_sec_max"],
            "items_per_sec_rounds": row["rounds"], "latency_ms_median": row["latency_ms_median"],
            "disturbed_rounds": row["disturbed_rounds"],
            # most rounds timed while other processes took the CPU: the checker refuses the figure
            "busy": row["disturbed_rounds"] > len(row["rounds"]) / 2,
            "timing": _timing(payload, setup, row), "weights": payload["weights"], "onnx": model["path"],
            "conv_sparsity": model["conv_sparsity"], "engine_info": info,
        })
    return records


@dataclass(frozen=True)
class Ratio:
    """One of the post's comparisons: numerator and denominator setups, and the published
    figures it is read against (ids in ``data/published.yaml``): two claims whose ratio
    it is, one claimed speed-up, or none."""

    title: str
    arch: str
    batch_size: int
    numerator: tuple[str, str]  # (variant, engine)
    denominator: tuple[str, str]
    claims: tuple[str, ...] = ()
    no_claim: str = ""  # why no published figure applies


def table_ratios(archs: Sequence[str] = ARCHS, batch_sizes: Sequence[int] = (1, 64)) -> list[Ratio]:
    """The post's comparisons at its conditions, and the project's own answer (the thinned
    models against the dense fp32 model, beside Neural Magic's pruned INT8 model)."""
    ratios: list[Ratio] = []
    for arch in archs:
        # The blog's batch-1 figures are YOLOv5l's; the 2022 tutorial has both at batch 64.
        blog = {"dense": "nm_yolov5l_deepsparse_dense_c5_b1", "ort": "nm_yolov5l_onnxruntime_c5_b1",
                "pq": "nm_yolov5l_deepsparse_pq_c5_b1"} if arch == "yolov5l" else {}
        pq_vs_dense = (blog["pq"], blog["dense"]) if blog else ()
        b64 = {v: f"nm_recipes_2022_{arch}_{v}_b64" for v in ("dense", "pruned", "pq")}
        zeros = "no claim: what the recipe's zeros add to INT8"
        if 1 in batch_sizes:
            ratios += [
                Ratio("dense fp32: DeepSparse / ONNX Runtime", arch, 1, ("dense", "deepsparse"), ("dense", "onnxruntime"),
                      (blog["dense"], blog["ort"]) if blog else (), "the blog's figures are YOLOv5l's"),
                Ratio("pruned INT8 on DeepSparse / dense fp32 on ONNX Runtime", arch, 1, ("pruned-quantized", "deepsparse"),
                      ("dense", "onnxruntime"), (blog["pq"], blog["ort"]) if blog else (), "the blog's figures are YOLOv5l's"),
                Ratio("pruned INT8 / dense fp32, both DeepSparse", arch, 1, ("pruned-quantized", "deepsparse"),
                      ("dense", "deepsparse"), pq_vs_dense, "the blog's figures are YOLOv5l's"),
                Ratio("pruned INT8: DeepSparse / PyTorch", arch, 1, ("pruned-quantized", "deepsparse"),
                      ("pruned-quantized", "pytorch"), ("nm_table2_speedup_vs_pytorch_pq",)),
                Ratio("dense INT8 / dense fp32, both DeepSparse", arch, 1, ("quantized", "deepsparse"), ("dense", "deepsparse"),
                      no_claim="no claim at 640 px (the 180-FPS post's quantized-only row is YOLOv5s at 416)"),
                Ratio("zeros alone: pruned INT8 / dense INT8, both DeepSparse", arch, 1, ("pruned-quantized", "deepsparse"),
                      ("quantized", "deepsparse"), no_claim=zeros),
            ]
            ratios += [Ratio(f"project: {variant} / dense fp32, both DeepSparse", arch, 1, (variant, "deepsparse"),
                             ("dense", "deepsparse"), pq_vs_dense, "the blog's figures are YOLOv5l's")
                       for variant in ("thinned-quantized", "thinned-pruned-quantized")]
        if 64 in batch_sizes:
            ratios += [
                Ratio("pruned INT8 / dense fp32, both DeepSparse", arch, 64, ("pruned-quantized", "deepsparse"),
                      ("dense", "deepsparse"), (b64["pq"], b64["dense"])),
                Ratio("pruned fp32 / dense fp32, both DeepSparse", arch, 64, ("pruned", "deepsparse"), ("dense", "deepsparse"),
                      (b64["pruned"], b64["dense"])),
                Ratio("zeros alone: pruned INT8 / dense INT8, both DeepSparse", arch, 64, ("pruned-quantized", "deepsparse"),
                      ("quantized", "deepsparse"), no_claim=zeros),
            ]
            ratios += [Ratio(f"project: {variant} / dense fp32, both DeepSparse", arch, 64, (variant, "deepsparse"),
                             ("dense", "deepsparse"), (b64["pq"], b64["dense"]))
                       for variant in ("thinned-quantized", "thinned-pruned-quantized")]
    return ratios


def claimed(ratio: Ratio, published: Mapping[str, Claim]) -> tuple[float | None, str]:
    """The published figure ``ratio`` is read against (the low end of a range), and where
    it comes from; ``published``: the registry's claims by id."""
    if not ratio.claims:
        return None, ratio.no_claim
    if len(ratio.claims) == 1:
        claim = published[ratio.claims[0]]
        figure = f"{claim.value:g}-{claim.value_high:g}x" if claim.value_high is not None else f"{claim.value:g}x"
        return claim.value, f"{claim.source}: {figure}"
    num, den = (published[i] for i in ratio.claims)
    return num.value / den.value, f"{num.source}, {num.model}: {num.value:g} / {den.value:g} {num.unit}"


def ratio_rows(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every ratio of :func:`table_ratios` that both sides were timed for, round by round."""
    settings = payload["settings"]
    by_key = {(s["model"], s["engine"], s["batch_size"]): payload["speed"].get(s["label"]) for s in payload["setups"]}
    published = {claim.id: claim for claim in load_claims()}
    rows = []
    for ratio in table_ratios(settings["archs"], settings["batch_sizes"]):
        num = by_key.get((f"{ratio.arch}-{ratio.numerator[0]}", ratio.numerator[1], ratio.batch_size))
        den = by_key.get((f"{ratio.arch}-{ratio.denominator[0]}", ratio.denominator[1], ratio.batch_size))
        if not num or not den:
            continue
        per_round = [n / d for n, d in zip(num["rounds"], den["rounds"])]
        value, source = claimed(ratio, published)
        rows.append({
            "model": ratio.arch, "batch": ratio.batch_size, "comparison": ratio.title,
            "measured": round(statistics.median(per_round), 2), "min": min(per_round), "max": max(per_round),
            "min-max over rounds": f"{min(per_round):.2f}-{max(per_round):.2f}",
            "claimed": None if value is None else round(value, 2), "claim": source,
            "numerator items/s": round(num["items_per_sec"], 2), "denominator items/s": round(den["items_per_sec"], 2),
        })
    return rows


def sparsity_rows(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each model file's measured conv sparsity and its sparsest and densest pruned layer."""
    rows = []
    for key, model in payload["models"].items():
        pruned = [layer for layer in model["layers"] if layer["sparsity"] > 0.02]
        rows.append({
            "model": key, "precision": model["precision"], "conv sparsity": round(model["conv_sparsity"], 3),
            "pruned layers": f"{len(pruned)} of {len(model['layers'])}",
            "layer sparsity range": (f"{min(la['sparsity'] for la in pruned):.2f}-{max(la['sparsity'] for la in pruned):.2f}"
                                     if pruned else "-"),
        })
    return rows


def figure(payload: Mapping[str, Any]) -> go.Figure:
    """Measured ratios (median, min-max over rounds as error bars) beside the claimed ones."""
    import plotly.graph_objects as go

    rows = ratio_rows(payload)
    labels = [f"{r['model']} b{r['batch']}: {r['comparison']}" for r in rows]
    low = [r["measured"] - r["min"] for r in rows]
    high = [r["max"] - r["measured"] for r in rows]
    fig = go.Figure()
    fig.add_trace(go.Bar(y=labels, x=[r["measured"] for r in rows], orientation="h", name="measured here (median)",
                         error_x={"type": "data", "symmetric": False, "array": high, "arrayminus": low}))
    claimed = [(label, r["claimed"]) for label, r in zip(labels, rows) if r["claimed"] is not None]
    fig.add_trace(go.Scatter(y=[c[0] for c in claimed], x=[c[1] for c in claimed], mode="markers", name="claimed",
                             marker={"symbol": "diamond", "size": 11, "color": "black"}))
    fig.update_layout(title="Neural Magic's comparisons at 640 px: measured vs claimed speed-up",
                      xaxis_title="speed-up (x, higher is faster)", yaxis={"autorange": "reversed"},
                      height=max(360, 34 * len(rows) + 140), margin={"l": 420})
    return fig


def layer_rows(models: Mapping[str, Mapping[str, Any]], key: str) -> list[dict[str, Any]]:
    """Each convolution of one model file: the recipe's target and the sparsity measured in the file."""
    from yolotut.inference.sparsify import exported_layer_sparsity, targets_for_names

    model = models[key]
    measured = exported_layer_sparsity(model["layers"])
    targets = targets_for_names(measured, SparsityConfig.from_dict(model["sparsity_config"]))
    return [{"layer": name, "target": targets[name], "measured": round(measured[name], 4)} for name in measured]


def markdown_cells(payload: Mapping[str, Any]) -> list[list[str]]:
    """The ratio rows as a header row and string cells (the report's and the script's table)."""
    columns = ["model", "batch", "comparison", "measured", "min-max over rounds", "claimed", "numerator items/s",
               "denominator items/s"]
    cells = [columns]
    for row in ratio_rows(payload):
        cells.append(["-" if row[c] is None else (f"{row[c]:.2f}x" if c in ("measured", "claimed") else str(row[c]))
                      for c in columns])
    return cells

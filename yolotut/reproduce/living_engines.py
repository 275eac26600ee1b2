"""After end of life: every engine x quantization path on the same models, side by side in one run.

DeepSparse, SparseML and SparseZoo reached end of life in June 2025. The engines and
INT8 tools a user would pick today are OpenVINO with NNCF and ONNX Runtime with its
static quantizer; this study measures them next to DeepSparse on the same files:

* **models** (:class:`StudyModel`): a dense fp32 export of the tutorial's model; its
  post-training INT8 by NNCF (OpenVINO IR), by ONNX Runtime (QDQ ONNX) and, when given,
  by SparseML (notebook 03's one-shot INT8, QLinearConv); and the blog author's
  pruned SparseML QAT INT8 model;
* **setups** (:class:`Setup`): each model on every engine that runs its format
  (OpenVINO IR on OpenVINO only). A DeepSparse engine that compiles less than the
  whole graph runs the rest in its bundled ONNX Runtime: its figure would not be
  DeepSparse's, so it is recorded as skipped with the measured fraction;
* **speed** (:func:`measure_speed`): engine-only, one batch size at a time, every setup
  once per round in a rotated order, with the quiet policy of
  :mod:`yolotut.inference.quiet`; a round's throughput is batch x 1000 / median latency,
  the figure is the median over rounds with its min-max;
* **accuracy** (:func:`measure_accuracy`): mAP@0.5 and mAP@0.5:0.95 of every setup on the
  validation split, batch 1, the same evaluation for all.

:func:`table_rows`, :func:`figure` and :func:`recommendations` read the payload that
:func:`run_study` returns (and ``benchmarks/living_engines.py`` writes as
``living_engines.json``), so the notebook and the report show the same thing.
"""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from yolotut import hardware
from yolotut.inference.engines import ENGINES, EngineUnavailableError, create_engine
from yolotut.inference.quiet import QuietPolicy, interleaved_rounds
from yolotut.progress import tqdm

RESULTS_NAME = "living_engines"
QUANTIZATIONS = {
    "fp32": "none (fp32)",
    "nncf": "NNCF post-training INT8",
    "ort-qdq": "ONNX Runtime static INT8 (QDQ)",
    "sparseml-oneshot": "SparseML one-shot INT8",
    "sparseml-qat": "SparseML QAT INT8",
    # The same files with QLinearConv rewritten as DequantizeLinear -> Conv -> QuantizeLinear
    # (yolotut.inference.quantize.qlinear_to_qdq), the form OpenVINO runs on integer kernels.
    "sparseml-oneshot-qdq": "SparseML one-shot INT8, as QDQ",
    "sparseml-qat-qdq": "SparseML QAT INT8, as QDQ",
}
LIVING_ENGINES = ("onnxruntime", "openvino")  # maintained in 2026; DeepSparse is not
SPARSEML_QUANTIZATIONS = frozenset(label for key, label in QUANTIZATIONS.items() if key.startswith("sparseml-"))
# The rewritten SparseML files (not "ort-qdq": ONNX Runtime's own QDQ file runs on every engine).
QDQ_REWRITE_KEYS = ("sparseml-oneshot-qdq", "sparseml-qat-qdq")
QDQ_REWRITES = frozenset(QUANTIZATIONS[key] for key in QDQ_REWRITE_KEYS)


@dataclass(frozen=True)
class StudyModel:
    """One model file of the study."""

    key: str  # e.g. "dense-fp32", "dense-nncf-int8", "author-qat-int8"
    path: str
    quantization: str  # a key of QUANTIZATIONS
    network: str  # which trained network the file holds, e.g. "ours: yolov5s dense"
    names: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Setup:
    """One model on one engine (with the openvino engine's settings, if any)."""

    model: str  # StudyModel.key
    engine: str
    options: tuple[tuple[str, Any], ...] = ()
    cores: int | None = None  # None: the study's setting

    @property
    def label(self) -> str:
        hint = dict(self.options).get("precision_hint")
        others = ", ".join(f"{k}={v}" for k, v in self.options if k != "precision_hint")
        label = f"{self.model} · {self.engine}" + (f" ({hint})" if hint and hint != "f32" else "")
        label += f" [{others}]" if others else ""
        return label + (f" · {self.cores} core(s)" if self.cores else "")


def study_models(
    dense_onnx: str | Path,
    nncf_ir: str | Path | None = None,
    ort_qdq: str | Path | None = None,
    sparseml_int8: str | Path | None = None,
    network: str = "ours: dense",
    author_model: bool = True,
    qdq_dir: str | Path | None = None,
) -> dict[str, StudyModel]:
    """The models of the study, by key; files that are ``None`` are left out. With
    ``qdq_dir``, each SparseML INT8 file is also rewritten there in QDQ form (for OpenVINO)."""
    models = [
        StudyModel("dense-fp32", str(dense_onnx), "fp32", network),
        StudyModel("dense-nncf-int8", str(nncf_ir), "nncf", network) if nncf_ir else None,
        StudyModel("dense-ort-int8", str(ort_qdq), "ort-qdq", network) if ort_qdq else None,
        StudyModel("dense-sparseml-int8", str(sparseml_int8), "sparseml-oneshot", network) if sparseml_int8 else None,
    ]
    if author_model:
        from yolotut import assets

        models.append(StudyModel("author-qat-int8", str(assets.fetch("blog-yolov5n-pq-hardswish")), "sparseml-qat",
                                 "blog author: yolov5n-hardswish pruned", ("pistol",)))
    models = [m for m in models if m is not None]
    if qdq_dir is not None:
        from yolotut.inference.quantize import qlinear_to_qdq

        for m in [m for m in models if m.quantization.startswith("sparseml-")]:
            path = qlinear_to_qdq(m.path, Path(qdq_dir) / f"{m.key}-qdq.onnx")
            models.append(StudyModel(f"{m.key}-qdq", str(path), f"{m.quantization}-qdq", m.network, m.names))
    return {m.key: m for m in models}


def setups_for(models: Mapping[str, StudyModel], cpu: Mapping[str, Any] | None = None) -> list[Setup]:
    """Every engine that runs each model's format; OpenVINO's own default precision
    (bf16) too for float models, on CPUs where that default differs from f32."""
    cpu = cpu or hardware.cpu_fingerprint()
    bf16_default = bool(cpu.get("avx512_bf16") or cpu.get("amx"))
    setups: list[Setup] = []
    for model in models.values():
        if model.path.endswith(".xml") or model.quantization in QDQ_REWRITE_KEYS:
            # IR runs in OpenVINO only; a QDQ rewrite is for OpenVINO (the others run its source)
            setups.append(Setup(model.key, "openvino", (("precision_hint", "f32"),)))
            continue
        setups += [Setup(model.key, "onnxruntime"), Setup(model.key, "deepsparse"),
                   Setup(model.key, "openvino", (("precision_hint", "f32"),))]
        if bf16_default and model.quantization == "fp32":
            setups.append(Setup(model.key, "openvino", (("precision_hint", "default"),)))
    return setups


def _build(setup: Setup, models: Mapping[str, StudyModel], batch_size: int, cores: int | None):
    """The engine of ``setup`` at ``batch_size``, or the reason it cannot run (a string)."""
    model = models[setup.model]
    try:
        with warnings.catch_warnings():
            # the study records such a setup as skipped, with the fraction (below)
            warnings.filterwarnings("ignore", message="DeepSparse compiles only", category=RuntimeWarning)
            engine = create_engine(model.path, setup.engine, batch_size=batch_size, cores=setup.cores or cores,
                                   names=list(model.names) if model.names else None,
                                   options=dict(setup.options) or None)
    except (EngineUnavailableError, ValueError) as exc:
        return str(exc)
    except ImportError as exc:  # e.g. a separate environment holding only OpenVINO
        return f"{setup.engine} is not installed here ({exc})"
    supported = engine.info().get("fraction_of_supported_ops")
    if setup.engine == "deepsparse" and supported is not None and supported < 1.0:
        return (f"DeepSparse compiles {supported:.0%} of this graph and would run the rest in its bundled "
                "ONNX Runtime: not DeepSparse's figure")
    return engine


def measure_speed(
    setups: Sequence[Setup],
    models: Mapping[str, StudyModel],
    batch_size: int,
    rounds: int,
    warmup: int,
    iterations: int,
    cores: int | None = None,
    quiet: QuietPolicy | None = None,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Items/s of every setup at ``batch_size``: median and min-max over interleaved rounds (by label)."""
    quiet = quiet or QuietPolicy()
    engines, out = {}, {}
    for setup in tqdm(setups, desc=f"compile b{batch_size}", disable=not progress, leave=False):
        built = _build(setup, models, batch_size, cores)
        if isinstance(built, str):
            out[setup.label] = {"batch_size": batch_size, "skipped": built}
        else:
            engines[setup.label] = built
    bar = tqdm(total=rounds * len(engines), desc=f"rounds b{batch_size}", disable=not progress, leave=False)
    timed = interleaved_rounds({label: (lambda e=e: e) for label, e in engines.items()}, rounds, warmup, iterations, quiet,
                               on_measured=bar.update)
    bar.close()
    for label, row in timed.items():
        out[label] = {
            "batch_size": batch_size,
            "items_per_sec_median": statistics.median(row["rounds"]),
            "items_per_sec_min": min(row["rounds"]),
            "items_per_sec_max": max(row["rounds"]),
            "items_per_sec_rounds": [round(s, 2) for s in row["rounds"]],
            "latency_ms_median": statistics.median(row["latency_ms_median"]),
            "disturbed_rounds": row["disturbed_rounds"],
            "engine_info": row["engine_info"],
        }
    return out


def measure_accuracy(
    setups: Sequence[Setup],
    models: Mapping[str, StudyModel],
    data: str = "pistols",
    split: str = "valid",
    max_images: int | None = None,
    cores: int | None = None,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """mAP@0.5 and mAP@0.5:0.95 of every setup (batch 1), by label."""
    from yolotut.inference.evaluate import evaluate

    out: dict[str, dict[str, Any]] = {}
    for setup in tqdm(setups, desc="mAP", disable=not progress, leave=False):
        built = _build(setup, models, 1, cores)
        if isinstance(built, str):
            out[setup.label] = {"skipped": built}
            continue
        result = evaluate(built, data, split=split, max_images=max_images, progress=False)
        out[setup.label] = {k: result[k] for k in ("map50", "map50_95", "images", "instances")}
    return out


@dataclass
class StudySettings:
    batch_sizes: tuple[int, ...] = (1, 64)
    rounds: int = 5
    warmup: int = 25
    iterations: int = 80
    big_warmup: int = 3  # batches above 1 take seconds each: fewer runs
    big_iterations: int = 10
    val_images: int | None = None  # None: the whole split
    data: str = "pistols"
    cores: int | None = None
    quiet: QuietPolicy = field(default_factory=QuietPolicy)


def run_study(models: Mapping[str, StudyModel], settings: StudySettings, progress: bool = True) -> dict[str, Any]:
    """Speed at every batch size and mAP of every setup; the payload for ``write_results``."""
    setups = setups_for(models)
    speed = {}
    for batch in settings.batch_sizes:
        warmup, iterations = (settings.warmup, settings.iterations) if batch == 1 else (settings.big_warmup, settings.big_iterations)
        speed[batch] = measure_speed(setups, models, batch, settings.rounds, warmup, iterations, settings.cores, settings.quiet, progress)
    accuracy = measure_accuracy(setups, models, settings.data, max_images=settings.val_images, cores=settings.cores, progress=progress)
    rows = []
    for setup in setups:
        model = models[setup.model]
        rows.append({
            "label": setup.label, "model": setup.model, "network": model.network, "path": model.path,
            "quantization": model.quantization, "engine": setup.engine, "options": dict(setup.options),
            "speed": {str(batch): speed[batch][setup.label] for batch in settings.batch_sizes},
            **accuracy[setup.label],
        })
    plain = asdict(settings)
    return {
        "hardware": hardware.cpu_fingerprint(),
        "versions": hardware.package_versions(),
        "settings": {**plain, "batch_sizes": list(settings.batch_sizes)},
        "models": {key: asdict(m) for key, m in models.items()},
        "rows": rows,
    }


# --- reading the payload ----------------------------------------------------------------------


def result_records(payload: Mapping[str, Any], arch: str) -> list[dict[str, Any]]:
    """The study as result records for ``<results>/NN_name.json``: one per setup and batch size
    (items/s) and one per setup (mAP), so that the report's engine charts include it.

    Variants are ``living-<model key>``, which no published claim names: the study's figures
    inform the charts and tables, the claims keep their own notebooks' measurements.
    """
    records = []
    for row in payload["rows"]:
        model = payload["models"][row["model"]]
        tags = {
            "arch": "yolov5n" if row["model"].startswith("author") else arch,
            "variant": f"living-{row['model']}", "engine": row["engine"], "dataset": "pistols",
            "precision": "fp32" if model["quantization"] == "fp32" else "int8",
            "label": f"{row['network']}: {QUANTIZATIONS.get(model['quantization'], model['quantization'])}",
        }
        hint = row["options"].get("precision_hint")
        suffix = f"-{hint}" if hint and hint != "f32" else ""
        for batch, speed in row["speed"].items():
            if speed.get("items_per_sec_median") is None:
                continue
            info = speed.get("engine_info", {})
            records.append({**tags, "id": f"09-{row['model']}-{row['engine']}{suffix}-b{batch}", "batch_size": int(batch),
                            "items_per_sec": speed["items_per_sec_median"], "cores": info.get("cores"),
                            "imgsz": info.get("imgsz"), "measurement": "engine-only", "engine_info": info})
        if row.get("map50") is not None:
            records.append({**tags, "id": f"09-{row['model']}-{row['engine']}{suffix}-map", "map50": row["map50"],
                            "map50_95": row["map50_95"], "val_images": row.get("images")})
    return records


def _speed(row: Mapping[str, Any], batch: int) -> Mapping[str, Any]:
    return row.get("speed", {}).get(str(batch), {})


def _kernels_note(info: Mapping[str, Any]) -> str:
    if "int8_compute_fraction" in info:
        return (f"OpenVINO: {info['int8_compute_fraction']:.0%} of convs INT8, precision hint {info.get('precision_hint')}, "
                f"{info.get('num_streams')} stream(s)")
    if "fraction_of_supported_ops" in info:
        return f"DeepSparse ops {info['fraction_of_supported_ops']:.0%}"
    return ""


def table_rows(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One flat row per setup: speeds (median, min, max) per batch size, mAP, what ran."""
    batches = payload["settings"]["batch_sizes"]
    order = {engine: i for i, engine in enumerate(ENGINES)}
    rows = []
    for row in payload["rows"]:
        flat = {"network": row["network"], "quantization": QUANTIZATIONS.get(row["quantization"], row["quantization"]),
                "engine": row["engine"] + (f" ({row['options']['precision_hint']})" if row["options"].get("precision_hint", "f32") != "f32" else ""),
                "engine_name": row["engine"], "label": row["label"], "map50": row.get("map50"), "map50_95": row.get("map50_95")}
        notes = []
        for batch in batches:
            s = _speed(row, batch)
            flat[f"items_per_sec_b{batch}"] = s.get("items_per_sec_median")
            flat[f"items_per_sec_b{batch}_min"] = s.get("items_per_sec_min")
            flat[f"items_per_sec_b{batch}_max"] = s.get("items_per_sec_max")
            if s.get("skipped"):
                notes.append(f"b{batch} skipped: {s['skipped']}")
        info = _speed(row, batches[0]).get("engine_info", {})
        notes.insert(0, _kernels_note(info))
        if row.get("skipped"):
            notes.append(f"mAP skipped: {row['skipped']}")
        flat["what ran"] = "; ".join(n for n in notes if n)
        rows.append(flat)
    return sorted(rows, key=lambda r: (r["network"], list(QUANTIZATIONS.values()).index(r["quantization"])
                                       if r["quantization"] in QUANTIZATIONS.values() else 99, order.get(r["engine_name"], 99)))


def markdown_cells(payload: Mapping[str, Any]) -> list[list[str]]:
    """The table as header + rows of strings (what the report and the notebook print)."""
    batches = payload["settings"]["batch_sizes"]
    head = ["network", "quantization", "engine", *[f"items/s batch {b} (median, min-max)" for b in batches], "mAP@0.5", "mAP@0.5:0.95", "what ran"]

    def speed(r: Mapping[str, Any], b: int) -> str:
        median = r[f"items_per_sec_b{b}"]
        return "-" if median is None else f"{median:.1f} ({r[f'items_per_sec_b{b}_min']:.1f}-{r[f'items_per_sec_b{b}_max']:.1f})"

    body = [[r["network"], r["quantization"], r["engine"], *[speed(r, b) for b in batches],
             "-" if r["map50"] is None else f"{r['map50']:.3f}", "-" if r["map50_95"] is None else f"{r['map50_95']:.3f}", r["what ran"]]
            for r in table_rows(payload)]
    return [head, *body]


def figure(payload: Mapping[str, Any]):
    """Speed (x, per batch size panel, min-max bars) against mAP@0.5 (y); colour = engine, symbol = quantization."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from yolotut.ui.plots import ENGINE_COLORS

    batches = payload["settings"]["batch_sizes"]
    rows = [r for r in table_rows(payload) if r["map50"] is not None]
    symbols = dict(zip(QUANTIZATIONS.values(), ("circle", "diamond", "square", "triangle-up", "star", "triangle-down",
                                                 "star-diamond")))
    fig = make_subplots(rows=1, cols=len(batches), shared_yaxes=True, subplot_titles=[f"batch {b}" for b in batches])
    for col, batch in enumerate(batches, start=1):
        for r in rows:
            x = r[f"items_per_sec_b{batch}"]
            if x is None:
                continue
            fig.add_trace(go.Scatter(
                x=[x], y=[r["map50"]], mode="markers", name=f"{r['quantization']} · {r['engine']}", legendgroup=r["label"],
                showlegend=col == 1,
                marker={"size": 12, "color": ENGINE_COLORS.get(r["engine_name"]), "symbol": symbols.get(r["quantization"], "x"),
                        "line": {"width": 1, "color": "black"}},
                error_x={"type": "data", "symmetric": False, "array": [r[f"items_per_sec_b{batch}_max"] - x],
                         "arrayminus": [x - r[f"items_per_sec_b{batch}_min"]]},
                hovertemplate=f"{r['network']}<br>{r['quantization']} · {r['engine']}<br>%{{x:.1f}} items/s<br>mAP@0.5 %{{y:.3f}}<extra></extra>",
            ), row=1, col=col)
        fig.update_xaxes(title_text="items/s (median of rounds, min-max)", row=1, col=col)
    cpu = payload["hardware"]
    fig.update_layout(title=f"Engine x quantization: speed vs mAP@0.5 ({cpu.get('cpu_model')}, {cpu.get('cores_available')} cores)",
                      yaxis_title="mAP@0.5", template="plotly_white", height=520, legend={"font": {"size": 10}})
    return fig


def _best(rows: Sequence[Mapping[str, Any]], key: str) -> Mapping[str, Any] | None:
    candidates = [r for r in rows if r.get(key) is not None]
    return max(candidates, key=lambda r: r[key]) if candidates else None


def _describe(r: Mapping[str, Any], key: str) -> str:
    accuracy = f", mAP@0.5 {r['map50']:.3f}" if r.get("map50") is not None else ""
    return f"{r['quantization']} on {r['engine']} ({r['network']}): {r[key]:.0f} items/s{accuracy}"


MAINTAINED_QUANTIZATIONS = (QUANTIZATIONS["fp32"], QUANTIZATIONS["nncf"], QUANTIZATIONS["ort-qdq"])


def recommendations(payload: Mapping[str, Any], map_tolerance: float = 0.01) -> dict[str, str]:
    """One plain recommendation per use case, each drawn from the measured rows.

    Only setups whose mAP@0.5 lies within ``map_tolerance`` of the best measured for the
    same network are recommended; "maintained" means both the engine and the tool that
    made the file are still maintained (OpenVINO, ONNX Runtime, NNCF; not SparseML or
    DeepSparse).
    """
    batches = payload["settings"]["batch_sizes"]
    rows = table_rows(payload)
    best_map: dict[str, float] = {}
    for r in rows:
        if r["map50"] is not None:
            best_map[r["network"]] = max(best_map.get(r["network"], 0.0), r["map50"])
    accurate = [r for r in rows if r["map50"] is not None and r["map50"] >= best_map[r["network"]] - map_tolerance]
    maintained = [r for r in accurate if r["engine_name"] in LIVING_ENGINES and r["quantization"] in MAINTAINED_QUANTIZATIONS]
    one, big = f"items_per_sec_b{batches[0]}", f"items_per_sec_b{batches[-1]}"
    within = f"(mAP@0.5 within {map_tolerance * 100:.0f} point(s) of the network's best)"
    advice: dict[str, str] = {}
    fastest = _best(accurate, one)
    if fastest:
        advice[f"lowest latency (batch {batches[0]}), any software {within}"] = _describe(fastest, one)
    fastest_living = _best(maintained, one)
    if fastest_living:
        text = _describe(fastest_living, one)
        if fastest and fastest is not fastest_living:
            text += f"; {fastest_living[one] / fastest[one]:.2f}x the speed of the fastest above"
        advice[f"lowest latency (batch {batches[0]}), maintained software only {within}"] = text
    if len(batches) > 1:
        throughput = _best(maintained, big)
        if throughput:
            advice[f"throughput (batch {batches[-1]}), maintained software only {within}"] = _describe(throughput, big)
    for network in best_map:
        own = [r for r in rows if r["network"] == network and r["map50"] is not None]
        base = _best([r for r in own if r["quantization"] == QUANTIZATIONS["fp32"]], one)
        int8 = _best([r for r in own if r["quantization"] in MAINTAINED_QUANTIZATIONS[1:] and r["engine_name"] in LIVING_ENGINES], one)
        if base and int8:
            advice[f"INT8 without training, maintained tools ({network})"] = (
                f"{int8['quantization']} on {int8['engine']}: {int8[one] / base[one]:.2f}x the fastest fp32 setup "
                f"({base['engine']}), mAP@0.5 {int8['map50']:.3f} against {base['map50']:.3f}")
        sparseml = [r for r in own if r["quantization"] in SPARSEML_QUANTIZATIONS]
        on_deepsparse = _best([r for r in sparseml if r["engine_name"] == "deepsparse"], one)
        elsewhere = _best([r for r in sparseml if r["engine_name"] in LIVING_ENGINES], one)
        if on_deepsparse and elsewhere:
            how = " (rewritten as QDQ)" if elsewhere["quantization"] in QDQ_REWRITES else ""
            advice[f"a SparseML INT8 file you already have ({network})"] = (
                f"DeepSparse runs it at {on_deepsparse[one]:.0f} items/s, the fastest maintained engine "
                f"({elsewhere['engine']}{how}) at {elsewhere[one]:.0f} ({elsewhere[one] / on_deepsparse[one]:.2f}x), "
                f"mAP@0.5 {on_deepsparse['map50']:.3f} against {elsewhere['map50']:.3f}")
    return advice

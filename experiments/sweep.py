"""Run the synthetic-benchmark comparisons of issue 7 on CPU and regenerate experiments/RESULTS.md.

Every run is one ``python cli.py fit`` (``test_after_fit: true``, CSV logger) of
``experiments/synthetic/base.yaml`` plus one variant file, for each seed; its per-video test
probabilities (every head branch) land in ``runs/sweep/<run>/seed<k>/analysis/test_predictions.pt``
with the logged test metrics (``TestPredictionsWriter``), and the reversed-frame-order test
(``ReversedTimeEvaluation``) adds ``test/acc1_video_reversed``. This script reads those files,
computes the per-group measures below, and writes the tables (mean ± sample std over seeds)
between the ``<!-- sweep:… -->`` markers of RESULTS.md, leaving the prose around them alone, and
draws ``docs/img/synthetic_sweep.png``.

    python experiments/sweep.py                      # run what is missing (2 at a time), report
    python experiments/sweep.py --only temporal heads --seeds 0 1 2
    python experiments/sweep.py --only heads_hires heads_hires30 --seeds 0 1 2   # §2b, 64 px
    python experiments/sweep.py --report-only        # tables + plot from finished runs
    python experiments/sweep.py --dry-run            # print the commands

Runs whose predictions file exists are not run again (``--force`` reruns them). Each run gets one
intra-op thread (``OMP_NUM_THREADS=1``) and ``--jobs`` runs go in parallel: on a small shared CPU
two single-threaded runs get through more work than one two-threaded run.

Measures (test split, video level = mean of the softmax over the 4 test clips):

- ``acc``: top-1 over all classes; ``clip``: the first clip alone.
- ``reversal pair``: for each video, does the true class score higher than its time-reversed
  twin (grow ↔ shrink, same context and mark)? 50 % is chance; a 2D model with average
  consensus sees the same frames for both and must sit at chance.
- ``detail pair``: the same against the local-detail twin (mark top ↔ bottom).
- ``reversed``: top-1 when the test frames are played backwards (s3d Table 1).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = Path("runs/sweep")  # relative to ROOT, as in the printed commands
RESULTS = ROOT / "experiments" / "RESULTS.md"
PLOT = ROOT / "docs" / "img" / "synthetic_sweep.png"
BASE = "experiments/synthetic/base.yaml"


# ---- what runs -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    """One configuration; ``stages`` > 1 is a chain (U2S) whose stage k starts from k-1."""

    name: str
    configs: tuple[tuple[str, ...], ...]  # --config files per stage
    label: str
    #: how stage k starts from k-1: the weights-only callback (U2S, same model) or the model's
    #: ``init_weights`` (fine-tuning: tensors that fit, classifiers of another class count fresh)
    chain_by: str = "callback"

    def stage_names(self) -> list[str]:
        if len(self.configs) == 1:
            return [self.name]
        return [f"{self.name}_stage{k + 1}" for k in range(len(self.configs))]

    def commands(self, seed: int) -> list[list[str]]:
        commands = []
        names = self.stage_names()
        for k, (configs, name) in enumerate(zip(self.configs, names, strict=True)):
            command = ["python", "cli.py", "fit"]
            for config in configs:
                command += ["--config", config]
            command += [f"--seed_everything={seed}", f"--trainer.logger.init_args.name={name}",
                        f"--trainer.logger.init_args.version=seed{seed}"]
            if k > 0:
                previous = RUNS / names[k - 1] / f"seed{seed}" / "checkpoints" / "last.ckpt"
                if self.chain_by == "init_weights":
                    command += [f"--model.init_args.init_weights={previous}"]
                else:
                    command += ["--trainer.callbacks+=lightning_modules.callbacks."
                                "InitWeightsFromCheckpoint", f"--trainer.callbacks.path={previous}"]
            commands.append(command)
        return commands

    def predictions(self, seed: int, stage: int = -1) -> Path:
        name = self.stage_names()[stage]
        return ROOT / RUNS / name / f"seed{seed}" / "analysis" / "test_predictions.pt"


def _variant(name: str, label: str, *files: str) -> Run:
    return Run(name, ((BASE, *(f"experiments/synthetic/{f}.yaml" for f in files)),), label)


TSN = _variant("tsn", "TSN-R18 (2D)", "tsn")
I3D = _variant("i3d", "I3D-R18", "i3d")
DFB_DF = _variant("dfb_gb_df", "I3D-R18 + DFB (GB + DF)", "dfb_gb_df")
DFB_LB = _variant("dfb_gb_df_lb", "I3D-R18 + DFB (GB + DF + LB)", "dfb_gb_df_lb")
I3D_TP = _variant("i3d_tp", "I3D-R18, temporal pooling", "i3d_tp")
TSN_TP = _variant("tsn_tp", "TSN-R18, temporal pooling", "tsn_tp")
DENSE = _variant("i3d_dense", "I3D-R18, dense 8×1", "dense")
#: the dfb Table 1 heads again at 64 × 64 input (96 px videos): stage 4 / 5 maps 4 × 4 / 2 × 2
HIRES_GB = _variant("hires_gb", "I3D-R18, 64 px (GB)", "i3d", "hires")
HIRES_DF = _variant("hires_gb_df", "I3D-R18 + DFB (GB + DF), 64 px", "dfb_gb_df", "hires")
HIRES_LB = _variant("hires_gb_df_lb", "I3D-R18 + DFB (GB + DF + LB), 64 px", "dfb_gb_df_lb",
                    "hires")
#: the same, 30 epochs (at 64 px the 20-epoch runs were still improving at the last epoch)
HIRES30_GB = _variant("hires30_gb", "I3D-R18, 64 px, 30 ep (GB)", "i3d", "hires", "hires_30ep")
HIRES30_DF = _variant("hires30_gb_df", "I3D-R18 + DFB (GB + DF), 64 px, 30 ep", "dfb_gb_df",
                      "hires", "hires_30ep")
HIRES30_LB = _variant("hires30_gb_df_lb", "I3D-R18 + DFB (GB + DF + LB), 64 px, 30 ep",
                      "dfb_gb_df_lb", "hires", "hires_30ep")
#: the temporal stream of a two-stream TSN: TV-L1 flow, 5-pair stacks (10 channels) per segment
TSN_FLOW = _variant("tsn_flow", "TSN-R18 on flow (TV-L1, 5 pairs)", "tsn_flow")
#: transfer: pretrain on two contexts, fine-tune on the other two with 4 videos per class
TRANSFER_SCRATCH = _variant("transfer_scratch", "from scratch", "transfer_target")
TRANSFER_FT = Run("transfer_ft", (
    (BASE, "experiments/synthetic/transfer_source.yaml"),
    (BASE, "experiments/synthetic/transfer_target.yaml",
     "experiments/synthetic/transfer_finetune.yaml")), "fine-tuned", chain_by="init_weights")
TRANSFER_FT_LOW_LR = Run("transfer_ft_low_lr", (
    TRANSFER_FT.configs[0],
    (*TRANSFER_FT.configs[1], "experiments/synthetic/transfer_finetune_low_lr.yaml")),
    "fine-tuned, lr ÷ 10", chain_by="init_weights")
U2S = Run("u2s", tuple(
    (f"experiments/u2s/synthetic_stage{k}.yaml", f"experiments/synthetic/u2s_stage{k}.yaml")
    for k in (1, 2, 3)), "U2S (top-heavy I3D-R18)")

#: comparisons in priority order: name → (title, runs)
COMPARISONS: dict[str, tuple[str, tuple[Run, ...]]] = {
    "temporal": ("TSN vs I3D: time-reversed pairs and reversed frame order (s3d Table 1)",
                 (TSN, I3D)),
    "heads": ("GB vs GB+DF vs GB+DF+LB (dfb Table 1)", (I3D, DFB_DF, DFB_LB)),
    "heads_hires": ("GB vs GB+DF vs GB+DF+LB at 64 × 64 input (dfb Table 1, higher resolution)",
                    (HIRES_GB, HIRES_DF, HIRES_LB)),
    "heads_hires30": ("GB vs GB+DF vs GB+DF+LB at 64 × 64 input, 30 epochs",
                      (HIRES30_GB, HIRES30_DF, HIRES30_LB)),
    "u2s": ("U2S branches (u2s Table I)", (U2S,)),
    "pooling": ("Temporal pooling on vs off (unified-analysis Fig. 6)", (I3D, I3D_TP, TSN, TSN_TP)),
    "sampling": ("Uniform vs dense sampling, clip and video level (unified-analysis Fig. 5)",
                 (I3D, DENSE)),
    "two_stream": ("Two-stream TSN: RGB, flow and late fusion (dfb Table 4, s3d Table 4, "
                   "u2s Tables V-VI)", (TSN, TSN_FLOW)),
    "transfer": ("Fine-tuned vs from scratch on a new set of contexts, 4 videos per class",
                 (TRANSFER_SCRATCH, TRANSFER_FT, TRANSFER_FT_LOW_LR)),
}
#: late-fusion weights RGB : flow (TSN's 1 : 1.5, and the plain average)
FUSION_WEIGHTS = ((1.0, 1.5), (1.0, 1.0))


# ---- running ---------------------------------------------------------------------------------
def shell(command: Sequence[str]) -> str:
    return " ".join(command)


def run_chain(run: Run, seed: int, force: bool, dry_run: bool, log_dir: Path) -> tuple[str, float]:
    """Run every stage of ``run`` for ``seed`` that has no predictions file yet."""
    started = time.time()
    commands = run.commands(seed)
    names = run.stage_names()
    pending = [k for k in range(len(commands)) if force or not run.predictions(seed, k).exists()]
    if pending and pending[0] > 0:
        previous = ROOT / RUNS / names[pending[0] - 1] / f"seed{seed}" / "checkpoints" / "last.ckpt"
        if not previous.exists():  # a chain whose checkpoints were cleaned: start it over
            pending = list(range(len(commands)))
    for k, command in enumerate(commands):
        if k not in pending:
            continue
        if dry_run:
            print(shell(command))
            continue
        name = names[k]
        log = log_dir / f"{name}-seed{seed}.log"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "PYTHONWARNINGS": "ignore"}
        print(f"[sweep] {time.strftime('%H:%M:%S')} start {name} seed {seed}", flush=True)
        with log.open("w") as out:
            result = subprocess.run(command, cwd=ROOT, env=env, stdout=out,
                                    stderr=subprocess.STDOUT)
        if result.returncode != 0 or not run.predictions(seed, k).exists():
            tail = log.read_text()[-2000:]
            raise RuntimeError(f"{name} seed {seed} failed (exit {result.returncode}); "
                               f"log {log}:\n{tail}")
        print(f"[sweep] {time.strftime('%H:%M:%S')} done  {name} seed {seed} "
              f"({time.time() - started:.0f} s)", flush=True)
    return run.name, time.time() - started


def execute(runs: list[Run], seeds: Sequence[int], jobs: int, force: bool,
            dry_run: bool) -> None:
    log_dir = ROOT / RUNS / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    # seed-major: every comparison gets its first seed before any gets its third
    tasks = [(run, seed) for seed in seeds for run in runs]
    if dry_run:
        for run, seed in tasks:
            run_chain(run, seed, force, True, log_dir)
        return
    failures = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(run_chain, run, seed, force, False, log_dir): (run, seed)
                   for run, seed in tasks}
        for future, (run, seed) in futures.items():
            try:
                future.result()
            except Exception as error:  # keep the others going, report at the end
                failures.append(f"{run.name} seed {seed}: {error}")
                print(f"[sweep] FAILED {run.name} seed {seed}: {error}", flush=True)
    if failures:
        print(f"[sweep] {len(failures)} run(s) failed", file=sys.stderr)


# ---- measuring -------------------------------------------------------------------------------
def twin(name: str, what: str) -> str:
    context, mark, motion = name.split("-")
    if what == "reversal":
        return f"{context}-{mark}-{'shrink' if motion == 'grow' else 'grow'}"
    return f"{context}-{'mark_bottom' if mark == 'mark_top' else 'mark_top'}-{motion}"


def measures(path: Path) -> dict[str, dict[str, float]]:
    """``{branch: {measure: value}}`` from one predictions file (values in %)."""
    import torch

    return measures_of(torch.load(path, map_location="cpu", weights_only=True))


def measures_of(data: dict) -> dict[str, dict[str, float]]:
    """:func:`measures` of loaded predictions (a file's contents, or a fusion of files)."""
    import torch

    names = list(data["class_names"])
    index = {n: i for i, n in enumerate(names)}
    labels = data["labels"]
    metrics = data.get("metrics", {})
    out: dict[str, dict[str, float]] = {}
    for branch, probs in data["probs"].items():
        row = {"acc": 100 * float((probs.argmax(1) == labels).float().mean())}
        for what in ("reversal", "detail"):
            other = torch.tensor([index[twin(names[y], what)] for y in labels.tolist()])
            own = probs.gather(1, labels[:, None])[:, 0]
            rival = probs.gather(1, other[:, None])[:, 0]
            row[what] = 100 * float((own > rival).float().mean())
        suffix = "" if branch == data["final"] else f"_{branch}"
        if f"test/acc1_clip{suffix}" in metrics:
            row["clip"] = 100 * metrics[f"test/acc1_clip{suffix}"]
        if branch == data["final"] and "test/acc1_video_reversed" in metrics:
            row["reversed"] = 100 * metrics["test/acc1_video_reversed"]
        out[branch] = row
    out["_final"] = {"name": data["final"]}  # type: ignore[dict-item]
    return out


@dataclass
class Cell:
    values: list[float] = field(default_factory=list)

    def __str__(self) -> str:
        if not self.values:
            return "—"
        mean = statistics.fmean(self.values)
        if len(self.values) == 1:
            return f"{mean:.1f} (n=1)"
        return f"{mean:.1f} ± {statistics.stdev(self.values):.1f}"

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values) if self.values else math.nan

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0


def collect(run: Run, seeds: Sequence[int], stage: int = -1,
            branch: str | None = None) -> tuple[dict[str, Cell], list[int]]:
    cells: dict[str, Cell] = {}
    done = []
    for seed in seeds:
        path = run.predictions(seed, stage)
        if not path.exists():
            continue
        result = measures(path)
        chosen = branch or result["_final"]["name"]  # type: ignore[index]
        for key, value in result[chosen].items():
            cells.setdefault(key, Cell()).values.append(value)
        done.append(seed)
    return cells, done


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def solved(cell: Cell, threshold: float = 90.0) -> str:
    """How many seeds got a pair measure to ``threshold`` % or more (3D runs are bimodal on
    the detail pairs: a seed either finds the mark or stays at chance)."""
    if not cell.values:
        return "—"
    return f"{sum(v >= threshold for v in cell.values)}/{len(cell.values)}"


def seeds_note(done: list[int]) -> str:
    return ", ".join(map(str, done)) if done else "not run"


def report_temporal(seeds: Sequence[int]) -> str:
    rows = []
    for run in (TSN, I3D):
        cells, done = collect(run, seeds)
        rows.append([run.label, str(cells.get("acc", Cell())), str(cells.get("reversed", Cell())),
                     str(cells.get("reversal", Cell())), solved(cells.get("reversal", Cell())),
                     str(cells.get("detail", Cell())), solved(cells.get("detail", Cell())),
                     seeds_note(done)])
    return table(["model", "top-1 normal order", "top-1 reversed order",
                  "reversal pair (chance 50)", "seeds ≥ 90", "detail pair (chance 50)",
                  "seeds ≥ 90", "seeds"], rows)


def report_heads(seeds: Sequence[int], runs: tuple[Run, Run, Run] = (I3D, DFB_DF, DFB_LB),
                 what: str = "head (I3D-R18)") -> str:
    gb, df, lb = runs
    rows = []
    for run, name in ((gb, "GB (GAP baseline)"), (df, "GB + DF"), (lb, "GB + DF + LB")):
        cells, done = collect(run, seeds)
        rows.append([name, str(cells.get("acc", Cell())), str(cells.get("detail", Cell())),
                     solved(cells.get("detail", Cell())), str(cells.get("reversal", Cell())),
                     solved(cells.get("reversal", Cell())), seeds_note(done)])
    main = table([what, "top-1", "detail pair (chance 50)", "seeds ≥ 90",
                  "reversal pair (chance 50)", "seeds ≥ 90", "seeds"], rows)
    branch_rows = []
    for run, name in ((df, "GB + DF"), (lb, "GB + DF + LB")):
        for branch in ("avg", "xchannel", "max", "comb"):
            cells, done = collect(run, seeds, branch=branch)
            if done:
                branch_rows.append([name, branch, str(cells["acc"]), str(cells["detail"])])
    if not branch_rows:
        return main
    return main + "\n\nPer branch of the DFB heads (same runs):\n\n" + table(
        ["head", "branch", "top-1", "detail pair"], branch_rows)


def report_u2s(seeds: Sequence[int]) -> str:
    rows = []
    cells, done = collect(U2S, seeds, stage=0, branch="universal")
    rows.append(["one-pass universal (stage 1)", str(cells.get("acc", Cell())),
                 str(cells.get("detail", Cell())), str(cells.get("reversal", Cell())),
                 seeds_note(done)])
    for branch in ("universal", "bridge", "specific", "fused"):
        cells, done = collect(U2S, seeds, stage=-1, branch=branch)
        rows.append([f"{branch} (stage 3)", str(cells.get("acc", Cell())),
                     str(cells.get("detail", Cell())), str(cells.get("reversal", Cell())),
                     seeds_note(done)])
    return table(["U2S prediction", "top-1", "detail pair", "reversal pair", "seeds"], rows)


def report_pooling(seeds: Sequence[int]) -> str:
    rows = []
    for run, name in ((I3D, "I3D-R18, off (T = 8 to the head)"),
                      (I3D_TP, "I3D-R18, on (T: 8 → 4 → 2 → 1)"),
                      (TSN, "TSN-R18, off"), (TSN_TP, "TSN-R18, on")):
        cells, done = collect(run, seeds)
        rows.append([name, str(cells.get("clip", Cell())), str(cells.get("acc", Cell())),
                     str(cells.get("reversal", Cell())), str(cells.get("detail", Cell())),
                     solved(cells.get("detail", Cell())), seeds_note(done)])
    return table(["model, temporal pooling", "top-1 clip", "top-1 video (4 clips)",
                  "reversal pair", "detail pair", "detail ≥ 90", "seeds"], rows)


def report_sampling(seeds: Sequence[int]) -> str:
    rows = []
    for run, name in ((I3D, "uniform 8 segments"), (DENSE, "dense 8 × 1 (half the video)")):
        cells, done = collect(run, seeds)
        rows.append([name, str(cells.get("clip", Cell())), str(cells.get("acc", Cell())),
                     str(cells.get("reversal", Cell())), str(cells.get("detail", Cell())),
                     seeds_note(done)])
    return table(["I3D-R18 sampling", "top-1 clip", "top-1 video (4 clips)", "reversal pair",
                  "detail pair", "seeds"], rows)


def report_heads_hires(seeds: Sequence[int]) -> str:
    return report_heads(seeds, (HIRES_GB, HIRES_DF, HIRES_LB), "head (I3D-R18, 64 × 64 input)")


def report_heads_hires30(seeds: Sequence[int]) -> str:
    return report_heads(seeds, (HIRES30_GB, HIRES30_DF, HIRES30_LB),
                        "head (I3D-R18, 64 × 64 input, 30 epochs)")


def collect_fused(seeds: Sequence[int], weights: tuple[float, float]
                  ) -> tuple[dict[str, Cell], list[int]]:
    """Measures of the late fusion of the TSN RGB and flow runs of each seed."""
    from lightning_modules.analysis.fusion import fuse
    from lightning_modules.analysis.predictions import load_predictions

    cells: dict[str, Cell] = {}
    done = []
    for seed in seeds:
        paths = [TSN.predictions(seed), TSN_FLOW.predictions(seed)]
        if not all(p.exists() for p in paths):
            continue
        fused = fuse([load_predictions(p) for p in paths], weights, ["rgb", "flow"])
        for key, value in measures_of(fused)["fused"].items():
            cells.setdefault(key, Cell()).values.append(value)
        done.append(seed)
    return cells, done


def report_two_stream(seeds: Sequence[int]) -> str:
    rows = []
    entries = [(f"{TSN.label}: RGB stream", *collect(TSN, seeds)),
               (f"{TSN_FLOW.label}: flow stream", *collect(TSN_FLOW, seeds))]
    for rgb, flow in FUSION_WEIGHTS:
        entries.append((f"late fusion RGB : flow = {rgb:g} : {flow:g}",
                        *collect_fused(seeds, (rgb, flow))))
    for name, cells, done in entries:
        rows.append([name, str(cells.get("acc", Cell())), str(cells.get("reversal", Cell())),
                     solved(cells.get("reversal", Cell())), str(cells.get("detail", Cell())),
                     solved(cells.get("detail", Cell())), seeds_note(done)])
    return table(["stream", "top-1", "reversal pair (chance 50)", "seeds ≥ 90",
                  "detail pair (chance 50)", "seeds ≥ 90", "seeds"], rows)


def report_transfer(seeds: Sequence[int]) -> str:
    rows = []
    source, done = collect(TRANSFER_FT, seeds, stage=0)
    rows.append(["source: stripes + checker, 24 / class (pretraining)",
                 str(source.get("acc", Cell())), str(source.get("reversal", Cell())),
                 str(source.get("detail", Cell())), seeds_note(done)])
    for run, name in ((TRANSFER_SCRATCH, "target from scratch: gradient + rings, 4 / class"),
                      (TRANSFER_FT, "target fine-tuned from the source (init_weights)"),
                      (TRANSFER_FT_LOW_LR, "target fine-tuned, lr ÷ 10 (3e-4)")):
        cells, done = collect(run, seeds)
        rows.append([name, str(cells.get("acc", Cell())), str(cells.get("reversal", Cell())),
                     str(cells.get("detail", Cell())), seeds_note(done)])
    return table(["I3D-R18 run", "top-1 (chance 12.5)", "reversal pair", "detail pair",
                  "seeds"], rows)


REPORTS = {"temporal": report_temporal, "heads": report_heads, "transfer": report_transfer,
           "heads_hires": report_heads_hires,
           "heads_hires30": report_heads_hires30, "u2s": report_u2s,
           "pooling": report_pooling, "sampling": report_sampling,
           "two_stream": report_two_stream}


def commands_block(names: Sequence[str]) -> str:
    lines = []
    for name in names:
        for run in COMPARISONS[name][1]:
            for command in run.commands(0):
                line = shell(command)
                if line not in lines:
                    lines.append(line)
    return "```bash\n" + "\n".join(lines) + "\n```\n(seed 0 shown; the sweep repeats each with " \
        "`--seed_everything=<k>` and `version=seed<k>` for the other seeds)"


def write_results(seeds: Sequence[int], names: Sequence[str] | None = None) -> None:
    """Regenerate the tables of ``names`` (default: every comparison) in RESULTS.md."""
    text = RESULTS.read_text() if RESULTS.exists() else ""
    # a comparison none of whose runs has a result here (e.g. a fresh checkout, whose runs/ is
    # not in git) keeps the table already in RESULTS.md instead of being blanked to "not run"
    blocks = {name: REPORTS[name](seeds) for name, (_, runs) in COMPARISONS.items()
              if (names is None or name in names)
              and any(run.predictions(seed).exists() for run in runs for seed in seeds)}
    for name in names or COMPARISONS:
        if name not in blocks:
            print(f"[sweep] no finished runs for {name}: its table is left as it is")
    blocks["commands"] = commands_block(list(COMPARISONS))
    for name, body in blocks.items():
        begin, end = f"<!-- sweep:{name} begin -->", f"<!-- sweep:{name} end -->"
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
        replacement = f"{begin}\n{body}\n{end}"
        if pattern.search(text):
            text = pattern.sub(lambda _, r=replacement: r, text)
        else:
            text += f"\n## {name}\n\n{replacement}\n"
    RESULTS.write_text(text)
    print(f"[sweep] wrote {RESULTS}")


def plot(seeds: Sequence[int]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("[sweep] matplotlib missing: no plot (pip install matplotlib)")
        return
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    panels = [
        (axes[0], "TSN vs I3D (s3d Table 1; + TSN with temporal pooling)",
         [(TSN, None), (I3D, None), (TSN_TP, None)],
         [("acc", "top-1"), ("reversed", "top-1,\nreversed frames"),
          ("reversal", "reversal pair"), ("detail", "detail pair")]),
        (axes[1], "Fine-grained heads on I3D (dfb Table 1)",
         [(I3D, "GB"), (DFB_DF, "GB+DF"), (DFB_LB, "GB+DF+LB")],
         [("acc", "top-1"), ("detail", "detail pair"), ("reversal", "reversal pair")]),
    ]
    missing = [run.name for _, _, runs, _ in panels for run, _ in runs
               if not any(run.predictions(seed).exists() for seed in seeds)]
    if missing:  # a partial plot would silently drop bars: keep the existing image
        plt.close(fig)
        print(f"[sweep] no finished runs for {', '.join(missing)}: {PLOT} left as it is")
        return
    for ax, title, runs, keys in panels:
        width = 0.8 / len(runs)
        for i, (run, label) in enumerate(runs):
            cells, done = collect(run, seeds)
            means = [cells[k].mean if k in cells else math.nan for k, _ in keys]
            stds = [cells[k].std if k in cells else 0.0 for k, _ in keys]
            xs = [j + (i - (len(runs) - 1) / 2) * width for j in range(len(keys))]
            ax.bar(xs, means, width, yerr=stds, capsize=3,
                   label=f"{label or run.label} (n={len(done)})")
        ax.axhline(50, color="grey", lw=0.8, ls="--")
        ax.set_xticks(range(len(keys)), [k[1] for k in keys])
        ax.set_ylim(0, 105)
        ax.set_ylabel("% (test, mean ± std over seeds)")
        ax.set_title(title)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3)
    fig.suptitle("Synthetic fine-grained benchmark (CPU, 8 classes: top-1 chance 12.5 %); "
                 "dashed: pair chance (50 %)")
    fig.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT, dpi=110)
    print(f"[sweep] wrote {PLOT}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(COMPARISONS), default=None,
                        help="comparisons to run (default: all, in priority order)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel")
    parser.add_argument("--force", action="store_true", help="rerun finished runs")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    parser.add_argument("--report-only", action="store_true", help="no runs; tables + plot")
    args = parser.parse_args(argv)
    names = args.only or list(COMPARISONS)
    if not args.report_only:
        runs: list[Run] = []
        for name in names:
            for run in COMPARISONS[name][1]:
                if run not in runs:
                    runs.append(run)
        execute(runs, args.seeds, args.jobs, args.force, args.dry_run)
        if args.dry_run:
            return 0
    write_results(args.seeds, args.only)
    plot(args.seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Which InceptionV1 block structure reproduces the S3D paper's Table 2 complexity?

    python -m benchmarks.s3d_structure_search            # best candidates per row and jointly
    python -m benchmarks.s3d_structure_search --top 10   # more candidates per row

Table 2 (Kinetics-400, 64×224²): I3D 12.06 M / 107.89 G, S3D 8.77 M / 66.38 G, S3D-G 11.56 M /
71.38 G. The paper leaves open the stem, ``conv_2c``, which branches get a temporal conv
(footnote 5 says all four), where the gates sit (§4.6 says after each ``k×1×1`` temporal conv)
and whether the counts include the 400-way logits; the released TF-slim code (``nets/i3d.py``,
``nets/s3dg.py``, ``nets/i3d_utils.py``) fixes I3D and one S3D-G. This script enumerates those
choices in closed form — params and multiply-accumulates per layer, the convention of
``models.complexity`` — and prints, for each counting rule (logits counted or not; PyTorch BN
with γ and β, or TF-slim's trainable variables: β only, ``scale=False``, and a bias instead of a
BN after a separable unit's temporal conv), the structures closest to each row and the best joint
choice. ``structure_complexity`` equals ``models.complexity`` on every structure
``InceptionV1Video`` builds (``tests/test_complexity.py``), so the closed form is the model's own
arithmetic, extended to the structures it does not build.

Error of a candidate = the larger of its params and FLOPs relative errors.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

import torch

from models import complexity, create_backbone
from models.inception import MIXED

#: Table 2 of the S3D paper: row → (params M, GFLOPs)
TABLE_2: dict[str, tuple[float, float]] = {
    "I3D": (12.06, 107.89),
    "S3D": (8.77, 66.38),
    "S3D-G": (11.56, 71.38),
}
FAST_S3D_GFLOPS = 43.47  # §4.4
TOLERANCE = 0.03

FRAMES, SIZE, CLASSES = 64, 224, 400

#: stems: (temporal kernel, separable, temporal stride on the spatial part)
STEMS: dict[str, tuple[int, bool, bool]] = {
    "3d 7×7×7": (7, False, False),  # I3D (released nets/i3d.py: first_temporal_kernel_size=7)
    "3d 3×7×7": (3, False, False),  # released nets/s3dg.py default ("separable is slow" there)
    "2d 1×7×7": (1, False, False),  # frame-subsampling 2D stem (temporal stride 2)
    "sep 1×7×7→7×1×1": (7, True, False),  # Fig. 6 sep-conv; torchvision's S3D; ours today
    "sep 1×7×7→3×1×1": (3, True, False),
    "sep 1×7×7/2t→7×1×1": (7, True, True),  # the spatial part already strides in time
    "sep 1×7×7/2t→3×1×1": (3, True, True),
}

#: which Inception branches get a temporal conv (branches 2, 3 are the 3×3 ones)
BRANCH_LAYOUTS: dict[str, frozenset[int]] = {
    "3×3 only": frozenset({2, 3}),  # released s3dg.py, torchvision's S3D
    "3×3 + 1×1": frozenset({1, 2, 3}),
    "3×3 + pool": frozenset({2, 3, 4}),
    "all four": frozenset({1, 2, 3, 4}),  # footnote 5
}

#: where S3D-G gates sit: a set of places
GATE_PLACES: dict[str, frozenset[str]] = {
    "after each temporal conv": frozenset({"stem", "conv_2c", "temporal_branches"}),  # §4.6
    "after each temporal conv in the blocks": frozenset({"temporal_branches"}),
    "after every branch + conv_2c": frozenset({"conv_2c", "all_branches"}),  # released s3dg.py
    "after every branch + conv_2c + stem": frozenset({"stem", "conv_2c", "all_branches"}),
    "after every branch": frozenset({"all_branches"}),
    "after each block's concat": frozenset({"concat"}),
    "after each block's concat + conv_2c": frozenset({"conv_2c", "concat"}),
}


@dataclass(frozen=True)
class Structure:
    """One InceptionV1 video net. ``blocks``/``conv_2c``: ``"2d"``, ``"3d"`` or ``"sep"``;
    ``gates``: places from ``GATE_PLACES`` (empty: no gating); ``gate_bias``: §4.6's ``b``
    (the released code has none); ``dense_gate_flops``: a FLOP-counting alternative for the gates,
    ``W`` at every position then pooled (``C²·THW``, the same output) instead of once on the
    pooled vector (``C²``, the released code and ``models.complexity``)."""

    stem: str = "3d 7×7×7"
    conv_2c: str = "3d"
    blocks: str = "3d"
    branches: str = "3×3 only"
    gates: frozenset[str] = frozenset()
    gate_bias: bool = True
    dense_gate_flops: bool = False

    def describe(self) -> str:
        text = f"stem {self.stem}, conv_2c {self.conv_2c}, blocks {self.blocks}"
        if self.blocks == "sep":
            text += f" ({self.branches})"
        if self.gates:
            place = next(k for k, v in GATE_PLACES.items() if v == self.gates)
            text += f", gates {place}" + ("" if self.gate_bias else " (no bias)")
            text += ", dense gate FLOPs" if self.dense_gate_flops else ""
        return text


@dataclass(frozen=True)
class Counting:
    """How a count is made: the 400-way logits included; ``bn="torch"`` (γ, β per BN, as
    ``models.complexity``) or ``"tf-slim"`` (trainable variables of the released code: β only,
    and a bias, no BN, after a separable unit's temporal conv)."""

    logits: bool = True
    bn: str = "torch"

    def describe(self) -> str:
        return f"logits {'counted' if self.logits else 'excluded'}, BN {self.bn}"


class _Tally:
    def __init__(self, counting: Counting) -> None:
        self.params = 0
        self.macs = 0
        self.counting = counting

    def conv(self, c_in: int, c_out: int, kernel: tuple[int, int, int], positions: int) -> None:
        weights = c_in * c_out * kernel[0] * kernel[1] * kernel[2]
        self.params += weights
        self.macs += weights * positions

    def norm(self, channels: int) -> None:
        """A BN (γ, β); tf-slim: β only (``scale=False``), or the bias that replaces the BN
        after a separable unit's temporal conv — ``channels`` either way."""
        self.params += channels * (2 if self.counting.bn == "torch" else 1)

    def unit(self, c_in: int, c_out: int, k: int, mode: str, positions: int,
             spatial_positions: int | None = None, kt: int = 3) -> None:
        """A conv unit: ``2d`` 1×k×k, ``3d`` kt×k×k, ``sep`` 1×k×k then kt×1×1 (the spatial part
        runs at ``spatial_positions``, before a temporal stride)."""
        if mode == "2d":
            self.conv(c_in, c_out, (1, k, k), positions)
        elif mode == "3d":
            self.conv(c_in, c_out, (kt, k, k), positions)
        else:
            self.conv(c_in, c_out, (1, k, k), spatial_positions or positions)
            self.norm(c_out)
            self.conv(c_out, c_out, (kt, 1, 1), positions)
        self.norm(c_out)

    def gate(self, channels: int, positions: int, structure: Structure) -> None:
        self.params += channels * channels + (channels if structure.gate_bias else 0)
        self.macs += channels * channels * (positions if structure.dense_gate_flops else 1)


def structure_complexity(structure: Structure, counting: Counting = Counting()) -> dict[str, float]:
    """``{"params_m", "gflops"}`` of ``structure`` at 64×224² in closed form (MACs of convs and
    gate matrices, as ``models.complexity`` counts), temporal strides as in I3D: stem, max_4a,
    max_5a (64 → 32 → 16 → 8 frames)."""
    s = structure
    tally = _Tally(counting)
    t1, h1 = FRAMES // 2, SIZE // 2
    stem_kt, stem_sep, stride_first = STEMS[s.stem]
    stem_out = t1 * h1 * h1
    if stem_sep:
        spatial = (t1 if stride_first else FRAMES) * h1 * h1
        tally.unit(3, 64, 7, "sep", stem_out, spatial, kt=stem_kt)
    else:
        tally.unit(3, 64, 7, "3d" if stem_kt > 1 else "2d", stem_out, kt=stem_kt)
    if "stem" in s.gates and stem_sep:  # only a separable stem has a k×1×1 conv to gate
        tally.gate(64, stem_out, s)
    stage2 = t1 * (SIZE // 4) ** 2
    tally.unit(64, 64, 1, "2d", stage2)
    tally.unit(64, 192, 3, s.conv_2c, stage2)
    if "conv_2c" in s.gates and s.conv_2c != "2d":
        tally.gate(192, stage2, s)
    temporal = BRANCH_LAYOUTS[s.branches] if s.blocks == "sep" else frozenset({2, 3})
    for name, (c_in, c1, c2r, c2, c3r, c3, c4) in MIXED.items():
        level = int(name[6])  # mixed_3b → 3
        positions = {3: t1 * 28 * 28, 4: t1 // 2 * 14 * 14, 5: t1 // 4 * 7 * 7}[level]
        one_by_one = "sep" if s.blocks == "sep" else "2d"
        tally.unit(c_in, c1, 1, one_by_one if 1 in temporal else "2d", positions)
        tally.unit(c_in, c2r, 1, "2d", positions)
        tally.unit(c2r, c2, 3, s.blocks if 2 in temporal else "2d", positions)
        tally.unit(c_in, c3r, 1, "2d", positions)
        tally.unit(c3r, c3, 3, s.blocks if 3 in temporal else "2d", positions)
        tally.unit(c_in, c4, 1, one_by_one if 4 in temporal else "2d", positions)
        widths = {1: c1, 2: c2, 3: c3, 4: c4}
        for branch, width in widths.items():
            gated = "all_branches" in s.gates or (
                "temporal_branches" in s.gates and branch in temporal
            )
            if gated and s.blocks != "2d":
                tally.gate(width, positions, s)
        if "concat" in s.gates:
            tally.gate(sum(widths.values()), positions, s)
    if counting.logits:
        # released code: avg-pool 2×7×7 (VALID) on 8×7×7 → 7 positions, then a 1×1×1 conv + bias
        tally.conv(1024, CLASSES, (1, 1, 1), t1 // 4 - 1)
        tally.params += CLASSES
    return {"params_m": tally.params / 1e6, "gflops": tally.macs / 1e9}


def error(figures: dict[str, float], row: str) -> float:
    """The larger relative error of params and FLOPs against Table 2's ``row``."""
    params, gflops = TABLE_2[row]
    return max(abs(figures["params_m"] / params - 1), abs(figures["gflops"] / gflops - 1))


#: the released code's I3D (nets/i3d.py): 7×7×7 stem, conv_2c and every 3×3 inflated
RELEASED_I3D = Structure()
#: the released code's S3D-G (nets/s3dg.py defaults)
RELEASED_S3DG = Structure("3d 3×7×7", "sep", "sep", "3×3 only",
                          GATE_PLACES["after every branch + conv_2c"], gate_bias=False)
#: footnote 5 / Fig. 6 read literally, which ``s3d_inception`` builds
FOOTNOTE_5_S3D = Structure("sep 1×7×7→7×1×1", "sep", "sep", "all four")


_LAYOUT_STEMS = {"3d": "3d 7×7×7", "sep": "sep 1×7×7→7×1×1", "2d": "2d 1×7×7"}
_STEM_OPTIONS = {"3d 7×7×7": ("3d", 7), "3d 3×7×7": ("3d", 3), "2d 1×7×7": ("2d", 7),
                 "sep 1×7×7→7×1×1": ("separable", 7), "sep 1×7×7→3×1×1": ("separable", 3)}
_MODEL_GATES = frozenset({"stem", "conv_2c", "all_branches"})  # InceptionV1Video(gating=True)


def model_options(structure: Structure) -> dict[str, object] | None:
    """``InceptionV1Video`` arguments that build ``structure`` — ``models.complexity`` then gives
    ``structure_complexity(structure, Counting(logits=False))`` exactly — or ``None`` when the
    model has no such option (a stem that strides in time before its temporal conv, ``conv_2c``
    3D under separable blocks, one 1×1 branch temporal, gates not after every branch, dense gate
    FLOPs)."""
    s = structure
    if s.stem not in _STEM_OPTIONS or s.dense_gate_flops:
        return None
    options: dict[str, object] = {"temporal": {"3d": "i3d", "sep": "s3d", "2d": "none"}[s.blocks]}
    if s.conv_2c != s.blocks:
        if s.conv_2c != "2d":
            return None
        options.update(temporal_layout="top_heavy", transition="mixed_3b")  # 2D up to conv_2c
    if s.stem != _LAYOUT_STEMS[s.blocks] or s.conv_2c != s.blocks:
        options["stem"], options["stem_temporal_kernel"] = _STEM_OPTIONS[s.stem]
    if s.blocks == "sep" and s.branches not in ("3×3 only", "all four"):
        return None
    if s.blocks == "sep" and s.branches == "3×3 only":
        options["s3d_all_branches"] = False
    if s.gates:
        def effective(places: frozenset[str]) -> frozenset[str]:
            out = set(places)
            if s.branches == "all four" and "temporal_branches" in out:
                out = (out - {"temporal_branches"}) | {"all_branches"}
            if not STEMS[s.stem][1]:
                out.discard("stem")
            if s.conv_2c == "2d":
                out.discard("conv_2c")
            return frozenset(out)

        if s.blocks == "2d" or effective(s.gates) != effective(_MODEL_GATES):
            return None
        options["gating"] = True
        if not s.gate_bias:
            options["gate_bias"] = False
    return options


def i3d_candidates() -> Iterator[Structure]:
    for stem, conv_2c in itertools.product(("3d 7×7×7", "3d 3×7×7", "2d 1×7×7"), ("3d", "2d")):
        yield Structure(stem, conv_2c, "3d")


def s3d_candidates() -> Iterator[Structure]:
    for stem, conv_2c, branches in itertools.product(STEMS, ("sep", "3d", "2d"), BRANCH_LAYOUTS):
        yield Structure(stem, conv_2c, "sep", branches)


def gated(base: Structure) -> Iterator[Structure]:
    for places, bias, dense in itertools.product(GATE_PLACES.values(), (True, False),
                                                 (False, True)):
        yield replace(base, gates=places, gate_bias=bias, dense_gate_flops=dense)


def s3dg_candidates() -> Iterator[Structure]:
    for base in s3d_candidates():
        yield from gated(base)


COUNTINGS = [Counting(logits, bn) for logits in (True, False) for bn in ("torch", "tf-slim")]


@dataclass(frozen=True)
class Joint:
    """The best (I3D, S3D, S3D-G) under one counting rule. I3D is the released code's (it fixes
    every layer); ``strict``: S3D-G is that S3D plus gates (the paper's "S3D with gating"),
    else any gated structure."""

    counting: Counting
    strict: bool
    structures: tuple[Structure, Structure, Structure]
    errors: tuple[float, float, float]

    @property
    def worst(self) -> float:
        return max(self.errors)


def best(candidates: Iterable[Structure], row: str, counting: Counting
         ) -> tuple[Structure, float]:
    return min(((s, error(structure_complexity(s, counting), row)) for s in candidates),
               key=lambda pair: pair[1])


def joint_search(counting: Counting, strict: bool) -> Joint:
    """Minimise the worst row's error under one counting rule."""
    i3d = (RELEASED_I3D, error(structure_complexity(RELEASED_I3D, counting), "I3D"))
    if strict:
        triples = []
        for s3d in s3d_candidates():
            e_s3d = error(structure_complexity(s3d, counting), "S3D")
            s3dg = best(gated(s3d), "S3D-G", counting)
            triples.append((max(e_s3d, s3dg[1]), (s3d, e_s3d), s3dg))
        _, s3d, s3dg = min(triples, key=lambda t: t[0])
    else:
        s3d = best(s3d_candidates(), "S3D", counting)
        s3dg = best(s3dg_candidates(), "S3D-G", counting)
    return Joint(counting, strict, (i3d[0], s3d[0], s3dg[0]), (i3d[1], s3d[1], s3dg[1]))


def ranked(row: str, counting: Counting, top: int, buildable: bool = False
           ) -> list[tuple[float, Structure, dict]]:
    """The ``top`` structures closest to ``row`` (only those ``InceptionV1Video`` builds, with
    ``buildable``): (error, structure, figures)."""
    candidates = {"I3D": i3d_candidates, "S3D": s3d_candidates, "S3D-G": s3dg_candidates}[row]
    rows = []
    for s in candidates():
        if buildable and model_options(s) is None:
            continue
        figures = structure_complexity(s, counting)
        rows.append((error(figures, row), s, figures))
    rows.sort(key=lambda r: r[0])
    return rows[:top]


def _line(label: str, figures: dict[str, float], row: str) -> str:
    params, gflops = TABLE_2[row]
    p, g = figures["params_m"], figures["gflops"]
    return (f"  {label:7} {p:6.2f} M ({100 * (p / params - 1):+5.1f}%)"
            f" {g:7.2f} G ({100 * (g / gflops - 1):+5.1f}%)")


def _builds(structure: Structure) -> str:
    options = model_options(structure)
    if options is None:
        return ""
    arguments = ", ".join(f"{k}={v!r}" for k, v in options.items())
    return f" — builds: InceptionV1Video({arguments})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--top", type=int, default=5, help="candidates shown per row and rule")
    args = parser.parse_args()

    print("Table 2:", ", ".join(f"{k} {p} M / {g} G" for k, (p, g) in TABLE_2.items()))
    print("\n== documented structures ==")
    for label, structure, row in (("I3D, released nets/i3d.py", RELEASED_I3D, "I3D"),
                                  ("S3D, footnote 5 (s3d_inception)", FOOTNOTE_5_S3D, "S3D"),
                                  ("S3D-G, released nets/s3dg.py", RELEASED_S3DG, "S3D-G")):
        print(f"{label}: {structure.describe()}{_builds(structure)}")
        for counting in COUNTINGS:
            print(_line(row, structure_complexity(structure, counting), row),
                  f" [{counting.describe()}]")

    for counting in COUNTINGS:
        print(f"\n== closest structures per row — {counting.describe()} ==")
        for row in TABLE_2:
            for err, structure, figures in ranked(row, counting, args.top):
                print(f"{_line(row, figures, row)}  {100 * err:5.2f}%  {structure.describe()}"
                      f"{_builds(structure)}")

    print("\n== closest structures InceptionV1Video builds, per row ==")
    for counting in COUNTINGS:
        print(f"[{counting.describe()}]")
        for row in TABLE_2:
            err, structure, figures = ranked(row, counting, 1, buildable=True)[0]
            print(f"{_line(row, figures, row)}  {100 * err:5.2f}%  {structure.describe()}"
                  f"{_builds(structure)}")

    print(f"\n== best joint choice (worst row's error; within {TOLERANCE:.0%} wanted) ==")
    found = False
    for counting, strict in itertools.product(COUNTINGS, (True, False)):
        joint = joint_search(counting, strict)
        found |= joint.worst <= TOLERANCE
        print(f"{100 * joint.worst:5.2f}%  [{counting.describe()}; "
              f"S3D-G {'= that S3D + gates' if strict else 'any gated structure'}]")
        for row, structure, err in zip(TABLE_2, joint.structures, joint.errors, strict=True):
            print(f"    {row:6} {100 * err:5.2f}%  {structure.describe()}{_builds(structure)}")
    print("all three rows within 3 % under one counting rule:", "yes" if found else "no")

    print("\n== Fast-S3D (§4.4: 43.47 G), built and counted on the meta device ==")
    for all_branches in (True, False):
        with torch.device("meta"):
            net = create_backbone("fast_s3d_inception", s3d_all_branches=all_branches)
        gflops = complexity(net, (1, 3, FRAMES, SIZE, SIZE))["gflops"]
        layout = "all four" if all_branches else "3×3 only"
        print(f"  temporal convs on {layout:8}: {gflops:6.2f} G "
              f"({100 * (gflops / FAST_S3D_GFLOPS - 1):+5.1f}%)")

if __name__ == "__main__":
    main()

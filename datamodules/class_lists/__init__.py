"""Published class lists shipped with the package (facts, each with its source in README.md).

``classes_subset: mini_kinetics400`` (or ``mini_ssv2``) in a datamodule's config selects one by
name: Mini-Kinetics and Mini-SSV2 of the unified-analysis paper (§4), the authors' own lists.
"""

from __future__ import annotations

from importlib import resources

from datamodules.annotations import read_name_list

__all__ = ["PACKAGED_CLASS_LISTS", "packaged_class_list"]

#: name → (file in this folder, dataset whose class names it lists)
PACKAGED_CLASS_LISTS: dict[str, tuple[str, str]] = {
    "mini_kinetics400": ("mini_kinetics400.txt", "Kinetics-400"),
    "mini_ssv2": ("mini_ssv2.txt", "Something-Something v2"),
}


def packaged_class_list(name: str) -> list[str]:
    """The class names of the packaged list ``name`` (one of ``PACKAGED_CLASS_LISTS``)."""
    if name not in PACKAGED_CLASS_LISTS:
        raise KeyError(f"no packaged class list {name!r}; packaged: "
                       f"{sorted(PACKAGED_CLASS_LISTS)}")
    path = resources.files(__name__) / PACKAGED_CLASS_LISTS[name][0]
    with resources.as_file(path) as file:
        return read_name_list(file)

"""The package's layout: the map in gencourse/README.md names every module and its layer, imports
only point down the layers, formulas import no model, and every moved name still works at its
old place as the very same object."""

import ast
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gencourse

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gencourse"


def _layers() -> dict[str, int]:
    """Module name (as the map writes it, e.g. ``data.mnist``) -> its layer number in the map."""
    layers, layer = {}, None
    for line in (PACKAGE / "README.md").read_text().splitlines():
        heading = re.match(r"^(\d+)\. \*\*", line)
        if heading:
            layer = int(heading.group(1))
        row = re.match(r"^\s*\| `([a-z0-9_.]+)` \|", line)
        if row and layer is not None:
            layers[row.group(1)] = layer
    return layers


def _public_modules() -> list[str]:
    """Every module of the package, without the ``gencourse.`` prefix (private ones left out)."""
    return [
        m.name.removeprefix("gencourse.")
        for m in pkgutil.walk_packages(gencourse.__path__, "gencourse.")
        if not any(part.startswith("_") for part in m.name.split("."))
    ]


def _layer_of(module: str, layers: dict[str, int]) -> int:
    """The layer of ``module`` (``data.mnist``, ``report.cli``): its own row, else its package's."""
    return layers[module] if module in layers else layers[module.split(".")[0]]


def _module_level_imports(path: Path) -> set[str]:
    """The gencourse modules that ``path`` imports when it is imported (not inside functions)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gencourse."):
            found.add(node.module.removeprefix("gencourse."))
        elif isinstance(node, ast.Import):
            found |= {
                a.name.removeprefix("gencourse.") for a in node.names if a.name.startswith("gencourse.")
            }
    return found


def test_the_map_names_every_module_with_its_layer():
    layers = _layers()
    missing = [m for m in _public_modules() if m not in layers and m.split(".")[0] not in layers]
    assert not missing, f"gencourse/README.md does not map: {missing}"
    assert not [m for m in layers if m.split(".")[0] not in {n.split(".")[0] for n in _public_modules()}]


def test_imports_only_point_down_the_layers():
    layers = _layers()
    upward = []
    for module in _public_modules():
        path = PACKAGE / (module.replace(".", "/") + ".py")
        if not path.exists():
            path = PACKAGE / module.replace(".", "/") / "__init__.py"
        for target in _module_level_imports(path):
            if target.split(".")[0].startswith("_"):
                continue
            if _layer_of(target, layers) > _layer_of(module, layers):
                upward.append(f"{module} (layer {_layer_of(module, layers)}) imports {target}")
    assert not upward, upward


def _loaded_after(statement: str) -> set[str]:
    """The modules loaded in a fresh interpreter after ``statement``."""
    code = f"import sys\n{statement}\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(out.stdout.split())


@pytest.mark.parametrize(
    "statement",
    ["import gencourse.metrics", "import gencourse.divergences", "import gencourse.data"],
)
def test_formulas_and_data_import_no_model(statement):
    loaded = _loaded_after(statement)
    for model in ("gencourse.nets", "gencourse.features", "gencourse.gan", "gencourse.vae"):
        assert model not in loaded, f"{statement} imported {model}"


@pytest.mark.parametrize(
    "statement", ["from gencourse.report import record", "from gencourse.scoreboard import record"]
)
def test_recording_a_result_imports_no_model_and_no_matplotlib(statement):
    loaded = _loaded_after(statement)
    assert not {"gencourse.gan", "gencourse.nets", "matplotlib"} & loaded


def test_moved_names_are_the_same_objects_at_their_old_places():
    from gencourse import data, features, metrics, nets, report, runtime, scoreboard, style, translation
    from gencourse.data import discs, mixtures2d, mnist, phantoms
    from gencourse.dissection import unit_iou
    from gencourse.report import benchmark, cli, figure, render, timing
    from gencourse.train import loop

    for new in (report.record, report.verdict, render.render, figure.plot_scoreboard, timing.render_timing):
        assert getattr(scoreboard, new.__name__) is new
    assert scoreboard.reference_workload is benchmark.reference_workload and scoreboard.main is cli.main
    assert scoreboard.VERDICT_RULE is report.VERDICT_RULE
    for name in data.__all__:  # each name of gencourse.data is its home module's object
        homes = [m for m in (mnist, mixtures2d, phantoms, discs) if name in vars(m)]
        assert len(homes) == 1 and getattr(data, name) is getattr(homes[0], name), name
    for name in ("adain", "MappingNetwork", "StyleBlock", "TinyStyleGenerator", "style_mix", "fade_in"):
        assert getattr(translation, name) is getattr(style, name)
    assert translation.unit_iou is unit_iou
    for name in ("classifier_features", "classifier_probs", "detector_accuracy"):
        assert getattr(metrics, name) is getattr(features, name)
    assert (
        metrics.MNISTClassifier is nets.MNISTClassifier and metrics.train_classifier is nets.train_classifier
    )
    assert runtime.SCHEDULES is loop.SCHEDULES
    with pytest.raises(AttributeError):
        metrics.not_a_name  # noqa: B018


def test_bundled_data_still_resolves():
    from gencourse.data import bundled_dir

    assert (bundled_dir() / "SHA256SUMS").is_file()


@pytest.mark.parametrize("module", ["gencourse.scoreboard", "gencourse.report"])
def test_the_command_line_answers_at_its_old_and_new_names(module):
    out = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert "--budget" in out.stdout and "--timing" in out.stdout

"""Presets (workflow/presets/): the paper's setups as overlays of params.yaml, applied by `wsdkd preset`."""

from __future__ import annotations

import shutil

import pytest
import yaml

from wsdkd import cli
from wsdkd.pipeline.errors import UserError
from wsdkd.pipeline.presets import PRESETS_DIR, apply_preset, load_preset, merge, preset_names

from .conftest import PROJECT

PAPER_SCALES = [480, 576, 672, 736, 832]


def _leaves(tree: dict, prefix: str = "") -> set[str]:
    return {key for name, value in tree.items()
            for key in (_leaves(value, f"{prefix}{name}.") if isinstance(value, dict) else {f"{prefix}{name}"})}


@pytest.fixture
def params_file(tmp_path):
    path = tmp_path / "params.yaml"
    shutil.copy(PROJECT / "params.yaml", path)
    return path


def test_the_four_setups_are_there():
    assert preset_names() == ["builtin", "coco2014_paper", "nuswide_paper", "released_code"]


def test_merge_sets_nested_values_and_leaves_its_inputs_alone():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 2}
    overlay = {"a": {"y": [3]}, "c": None}
    assert merge(base, overlay) == {"a": {"x": 1, "y": [3]}, "b": 2, "c": None}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 2} and overlay == {"a": {"y": [3]}, "c": None}


def test_every_preset_sets_the_same_keys_so_order_does_not_matter():
    keys = {name: _leaves(load_preset(name)) for name in preset_names()}
    assert all(found == keys["builtin"] for found in keys.values()), keys


def test_extends_resolves_the_parent_first():
    nuswide = load_preset("nuswide_paper")
    assert nuswide["teacher"]["scales"] == PAPER_SCALES  # from coco2014_paper
    assert nuswide["dataset"]["source"] == "nuswide" and nuswide["evaluate"]["top_k_min_score"] is None


def test_builtin_is_the_shipped_params_byte_for_byte(params_file):
    before = params_file.read_bytes()
    apply_preset("builtin", params_file)
    assert params_file.read_bytes() == before


def test_coco_preset_writes_the_paper_settings_and_keeps_the_comments(params_file):
    params = apply_preset("coco2014_paper", params_file, "/datasets/my-coco",
                          {"teacher.backbone.weights_path": "/models/vgg16-397923af.pth"})
    written = yaml.safe_load(params_file.read_text())
    assert written == params
    assert written["dataset"]["source"] == "coco2014" and written["dataset"]["coco"]["root"] == "/datasets/my-coco"
    assert written["proposals"]["num_proposals"] == 500
    teacher = written["teacher"]
    assert (teacher["backbone"]["name"], teacher["freeze_backbone"], teacher["head"], teacher["hflip"]) == (
        "vgg16", False, "backbone", True)
    assert teacher["scales"] == PAPER_SCALES and teacher["cache_scale"] == 672
    assert teacher["backbone"]["weights_path"] == "/models/vgg16-397923af.pth"
    assert teacher["lr"] == 1e-5 and isinstance(teacher["lr"], float)  # PyYAML reads "1e-05" as a string
    assert (written["student"]["input_size"], written["student"]["lr"]) == (224, 1e-4)
    text = params_file.read_text()
    assert "scales: [480, 576, 672, 736, 832]" in text and "lr: 1.0e-5" in text
    assert "# One section per stage." in text and "# vgg16 (paper) | resnet50 | efficientnet_lite0" in text


def test_presets_applied_in_turn_equal_the_last_one_alone(params_file, tmp_path):
    apply_preset("released_code", params_file, "/data/coco")
    apply_preset("nuswide_paper", params_file, "/data/nuswide")
    alone = tmp_path / "alone.yaml"
    shutil.copy(PROJECT / "params.yaml", alone)
    apply_preset("nuswide_paper", alone, "/data/nuswide")
    turned, fresh = yaml.safe_load(params_file.read_text()), yaml.safe_load(alone.read_text())
    fresh["dataset"]["coco"]["root"] = "/data/coco"  # the data root of the first preset is the only trace
    assert turned == fresh
    assert turned["distill"]["predictions"]["soft_loss"] == "class_aware_l2"
    assert turned["distill"]["predictions"]["hinton_teacher_temperature"] == 2.0


def test_released_code_switches_only_the_distillation(params_file, tmp_path):
    released = apply_preset("released_code", params_file, "/data/coco")
    paper_file = tmp_path / "paper.yaml"
    shutil.copy(PROJECT / "params.yaml", paper_file)
    paper = apply_preset("coco2014_paper", paper_file, "/data/coco")
    assert {k: v for k, v in released.items() if k != "distill"} == {k: v for k, v in paper.items() if k != "distill"}
    assert released["distill"]["features"]["layer"] == "fc" and released["distill"]["features"]["roi_source"] == "all"
    assert released["distill"]["predictions"]["teacher_temperature"] == 0.5


def test_a_real_dataset_needs_its_root_and_the_builtin_refuses_one(params_file):
    before = params_file.read_bytes()
    with pytest.raises(UserError, match=r"coco2014_paper.yaml: dataset.source coco2014 needs --data-root "
                                        r"\(it sets dataset.coco.root\)"):
        apply_preset("coco2014_paper", params_file)
    with pytest.raises(UserError, match="builtin synthesises its data: --data-root does not apply"):
        apply_preset("builtin", params_file, "/data/coco")
    assert params_file.read_bytes() == before


def test_bad_requests_name_the_problem_and_write_nothing(params_file):
    before = params_file.read_bytes()
    with pytest.raises(UserError, match=r"no preset 'coco2017' \(expected one of: builtin, coco2014_paper"):
        apply_preset("coco2017", params_file, "/d")
    with pytest.raises(UserError, match=r"--set teacher.learning_rate: params.yaml has no such setting"):
        apply_preset("coco2014_paper", params_file, "/d", {"teacher.learning_rate": 0.1})
    with pytest.raises(UserError, match=r"\(preset coco2014_paper\): teacher.scales\[0\]: expected a value >= "):
        apply_preset("coco2014_paper", params_file, "/d", {"teacher.scales": [0]})
    assert params_file.read_bytes() == before
    assert not list(params_file.parent.glob(".params.yaml.tmp-*"))


def test_a_preset_file_with_a_typo_or_a_loop_is_named(tmp_path, params_file):
    (tmp_path / "typo.yaml").write_text("teacher:\n  sacles: [480]\n")
    with pytest.raises(UserError, match=r"\(preset typo\): teacher: unknown key 'sacles'"):
        apply_preset("typo", params_file, folder=tmp_path)
    (tmp_path / "a.yaml").write_text("extends: b\n")
    (tmp_path / "b.yaml").write_text("extends: a\n")
    with pytest.raises(UserError, match=r"a.yaml: presets extend each other in a loop \(a -> b -> a\)"):
        load_preset("a", tmp_path)


def test_the_command_applies_a_preset(params_file, capsys):
    code = cli.main(["preset", "coco2014_paper", "--data-root", "/data/coco", "--params", str(params_file),
                     "--set", "student.backbone.weights=random"])
    assert code == 0 and f"wrote {params_file} (preset coco2014_paper)" in capsys.readouterr().err
    assert yaml.safe_load(params_file.read_text())["student"]["backbone"]["weights"] == "random"
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["preset", "nuswide_paper", "--params", str(params_file)])
    assert exit_info.value.code == 2
    assert "needs --data-root" in capsys.readouterr().err


def test_presets_live_beside_params_yaml():
    assert PRESETS_DIR == PROJECT / "workflow" / "presets"

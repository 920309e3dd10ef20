"glass-demo: a reduced run end to end (a minute or two), its report's structure, and that guidance helps."
import json
from pathlib import Path
import pytest
from glass.metrics import DISCOVERY_KEYS
from glass.io import asset_path
from glass.toy import demo, model as toy_model

KEYS = set(DISCOVERY_KEYS)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    model = None
    if not toy_model.has_toy_model():   # no shipped checkpoint: a short pretraining (the numbers then say little)
        model = tmp_path_factory.mktemp("toy") / "toy-sd"
        toy_model.pretrain(model, steps=150, n_scenes=2000, vae_steps=150, progress=False)
    args = ["--quick", "--out", str(out), "--no-progress"] + (["--model", str(model)] if model else [])
    assert demo.main(args) is None                       # a console script: the exit status stays 0
    return out, json.loads((out / "metrics.json").read_text())


def test_metrics_json_has_exactly_the_promised_shape(quick):
    out, metrics = quick
    m = metrics
    assert set(m) == {"pseudo_masks", "runs", "unconditional", "seconds"}
    assert set(m["pseudo_masks"]) == {"object_miou", "class_miou"}
    assert set(m["runs"]) == {"unguided", "glass", "glass_instances", "glass_dagger", "gt_masks"}
    for run in m["runs"].values():
        assert set(run) == {"dinosaur", "glass", "repeated", "probe", "reconstruction"} and set(run["repeated"]) == {"dinosaur", "glass"}
        for proto in (run["dinosaur"], run["glass"], run["repeated"]["dinosaur"], run["repeated"]["glass"]):
            assert set(proto) == KEYS and all(0 <= v <= 1 for v in proto.values())
        assert set(run["reconstruction"]) == {"psnr", "fid", "conditioning_gap"} and run["reconstruction"]["psnr"] > 0
        assert set(run["probe"]) == {"accuracy", "detrate", "n_test"}
    assert set(m["unconditional"]["reconstruction"]) == {"psnr", "fid", "conditioning_gap"}
    assert m["seconds"]["total"] > 0 and all(k in m["seconds"] for k in ("world", "pseudo_masks", "generate_glass", "train_glass"))
    for v in m["pseudo_masks"].values(): assert 0 <= v <= 1


def test_report_and_figures(quick):
    out, m = quick
    rep = (out / "report.md").read_text()
    for title in ("Unguided", "GLASS", "GLASS†", "GT-mask guidance", "GLASS + instance masks", "Scenes where a class repeats",
                  "Pseudo masks", "Stage times", "Departures", "The decoder path"):
        assert title in rep, title
    assert f"{m['pseudo_masks']['object_miou']:.3f}" in rep                  # the numbers come from the run
    assert f"{m['runs']['glass']['dinosaur']['mbo_i']:.3f}" in rep
    assert f"{m['runs']['glass_instances']['repeated']['dinosaur']['mbo_i']:.3f}" in rep
    for f in ("scenes", "generated", "slots", "losses", "instances", "reconstructions"): assert (out / "figures" / f"{f}.png").stat().st_size > 1000
    det = json.loads((out / "details.json").read_text())
    assert det["config"]["encoder"]["kind"] == "cnn" and det["config"]["generate"]["refine_power"] == 0


def test_guidance_beats_reconstruction_alone(quick):
    _, m = quick
    for proto in ("dinosaur", "glass"):
        assert m["runs"]["glass"][proto]["mbo_i"] > m["runs"]["unguided"][proto]["mbo_i"], proto
        assert m["runs"]["gt_masks"][proto]["mbo_i"] > m["runs"]["unguided"][proto]["mbo_i"], proto


def test_rerun_resumes_and_other_settings_need_fresh(quick):
    out, m = quick
    demo.main(["--quick", "--out", str(out), "--no-progress"] + _model_args(out))
    again = json.loads((out / "metrics.json").read_text())
    assert again["runs"] == m["runs"] and again["pseudo_masks"] == m["pseudo_masks"]
    with pytest.raises(ValueError, match="--fresh"):
        demo.main(["--quick", "--out", str(out), "--no-progress", "--n-train", "8"] + _model_args(out))


def _model_args(out):
    s = json.loads((Path(out) / "demo_settings.json").read_text())
    return [] if Path(s["model"]) == Path(asset_path("toy-sd")) else ["--model", s["model"]]


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as e: demo.main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for opt in ("--out", "--quick", "--retrain", "--model", "--set", "--fresh", "--steps", "--minutes", "pretrain"):
        assert opt in text, opt


def test_bad_override_is_a_clear_error(tmp_path):
    with pytest.raises(KeyError, match="guidance.weight"):
        demo.main(["--quick", "--out", str(tmp_path / "x"), "--set", "guidance.wieght=2", "--no-progress"])

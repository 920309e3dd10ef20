"""glass-demo as a console script: the quick run end to end, its report, and that guidance helps at that budget.
The metrics' shape, resuming and the --fresh refusal are tested once, on a tiny run, in nbs/97_toy_demo.ipynb."""
import json
import pytest
from glass.toy import demo, model as toy_model

pytestmark = pytest.mark.xdist_group("demo")   # its module-scoped fixtures are built once, on one worker


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    model = None
    if not toy_model.has_toy_model():   # no shipped checkpoint: a short pretraining (the numbers then say little)
        model = tmp_path_factory.mktemp("toy") / "toy-sd"
        toy_model.pretrain(model, steps=150, n_scenes=2000, vae_steps=150, progress=False)
    args = ["--quick", "--runs", "all", "--out", str(out), "--no-progress"] + (["--model", str(model)] if model else [])
    assert demo.main(args) is None                       # a console script: the exit status stays 0
    return out, json.loads((out / "metrics.json").read_text())


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


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as e: demo.main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for opt in ("--out", "--quick", "--retrain", "--model", "--set", "--fresh", "--steps", "--minutes", "--runs", "--threads", "pretrain"):
        assert opt in text, opt


@pytest.mark.parametrize("args, says", [(["--set", "guidance.wieght=2"], "guidance.weight"),
                                         (["--runs", "glass,unguided,glass_dager"], "unknown demo run glass_dager"),
                                         (["--runs", "glass"], "add unguided to --runs")])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, says):
    with pytest.raises(SystemExit) as e:
        demo.main(["--quick", "--out", str(tmp_path / "x"), "--no-progress"] + args)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 1 and err.startswith("glass-demo: error: ") and says in err and "\n" not in err, err
    assert not (tmp_path / "x").exists()

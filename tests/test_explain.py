"""Explanations of one video: exact decomposition in explanation.json, interventions with their
before / after, the intervention syntax, and a self-contained report.html."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser

import numpy as np
import pytest
import torch

from helpers_explain import CLASS_NAMES, CONCEPT_NAMES, marked_task, save_video_checkpoint, spans_of
from helpers_tools import load_tool
from motif.explain import (
    ExplanationError,
    InterventionSyntaxError,
    explain_sequence,
    parse_intervention,
    parse_interventions,
    write_explanation,
)
from motif.model import AttentionIntervention, ConceptIntervention
from motif.plots.colours import COLOUR_WORDS, PALETTE, concept_colours, signed_term


@pytest.fixture(scope="module")
def task():
    return marked_task()


def _explain(task, index: int = 0, **kwargs):
    x = task["test_x"][index]
    return explain_sequence(task["model"], x, spans_of(len(x)), class_names=CLASS_NAMES, concept_names=CONCEPT_NAMES,
                            video_id=f"video{index}", **kwargs)


class _Collector(HTMLParser):
    """Tags, and every URL-like attribute value, of an HTML page."""

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.urls += [value or "" for name, value in attrs if name in ("src", "href", "srcset", "action", "poster")]


# --- explanation.json -----------------------------------------------------------------------------


def test_json_decomposition_is_exact_and_complete(task, tmp_path):
    result = _explain(task, 0, interventions=["zero:concept=red circle"])
    write_explanation(result, tmp_path, {t: np.full((18, 24, 3), 40 * t % 255, np.uint8) for t in range(4)})
    data = json.loads((tmp_path / "explanation.json").read_text())
    d = data["decomposition"]
    assert abs(d["residual"]) < 1e-4
    assert d["logit"] == pytest.approx(d["sum_global_importance"] + d["bias"] + d["entropy"] / d["tau"], abs=1e-4)
    g = [row["G"] for row in data["global_importance"]]
    assert g == sorted(g, reverse=True) and len(g) == len(CONCEPT_NAMES)
    assert sum(g) == pytest.approx(d["sum_global_importance"], abs=1e-5)
    pi = [w["importance"] for w in data["windows"]]
    assert sum(pi) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose([[w["start_s"], w["end_s"]] for w in data["windows"]], spans_of(len(pi)).numpy())
    probabilities = [row["probability"] for row in data["top_classes"]]
    assert probabilities == sorted(probabilities, reverse=True) and len(probabilities) == min(5, len(CLASS_NAMES))
    assert data["prediction"]["class"] == data["top_classes"][0]["class"]
    maps = np.array(data["attention"]["maps"])  # [layer, concept, T, T]; rows are distributions
    contributing = [row["concept"] for row in data["global_importance"][:5] if row["G"] > 0]
    assert maps.shape == (1, len(contributing), len(pi), len(pi))
    np.testing.assert_allclose(maps.sum(-1), 1.0, atol=1e-4)
    assert data["attention"]["concepts"] == contributing
    assert abs(data["intervention"]["after"]["residual"]) < 1e-4
    for name in ("timeline", "window_importance", "global_importance", "attention", "intervention"):
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_prediction_is_explained_by_its_marker_concept(task):
    """On the marked task the class concept must dominate G and the window where it is on dominate π."""
    hits = 0
    for i in range(9):
        result = _explain(task, i)
        label = task["test_y"][i]
        if result.predicted != label:
            continue
        on = task["test_truth"][i][:, label]
        hits += int(result.top_concepts(1) == [label] and bool(on[result.top_windows(1)[0]]))
    assert hits >= 7


def test_a_chosen_class_is_explained_exactly(task):
    result = _explain(task, 0, class_index="Blue Square Shown")
    assert result.target == 1
    assert abs(float(result.explanation.residual)) < 1e-4
    assert float(result.explanation.logit) == pytest.approx(float(result.output.logits[1]))
    with pytest.raises(ExplanationError, match="blue square shown"):
        _explain(task, 0, class_index="blue square shwn")


def test_suggested_edits_move_the_prediction_towards_the_chosen_class(task):
    i = next(i for i, y in enumerate(task["test_y"]) if y == 0 and _explain(task, i).predicted == 0)
    result = _explain(task, i, class_index=1)
    edits = result.suggested_edits
    assert 1 <= len(edits) <= 4 and all(e["margin_gain"] > 0 for e in edits)
    assert _explain(task, i).suggested_edits == []  # nothing to suggest for the prediction itself
    after = _explain(task, i, class_index=1, interventions=[e["intervene"] for e in edits]).intervention.after.logits
    before = result.output.logits
    assert float(after[1] - after[0]) > float(before[1] - before[0]) + 0.5


# --- interventions ----------------------------------------------------------------------------------


def test_concept_interventions_match_the_model(task):
    model, x = task["model"], task["test_x"][3]
    result = _explain(task, 3, interventions=["zero:concept=red circle|#1", "set:cell=2,green triangle,0.75"])
    reference = model(x[None], concept_intervention=ConceptIntervention(mode="zero", concepts=[0, 1]))
    z = reference.concepts.clone()
    z[0, 2, 2] = 0.75
    expected = model.readout(z).logits[0]
    torch.testing.assert_close(result.intervention.after.logits, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(result.intervention.before.logits, model(x[None]).logits[0])


def test_attention_intervention_matches_the_model(task):
    model, x = task["model"], task["test_x"][2]
    result = _explain(task, 2, interventions=["attn:reverse:concept=red circle|blue square"])
    expected = model(x[None], attention_intervention=AttentionIntervention("reverse", concepts=[0, 1])).logits[0]
    torch.testing.assert_close(result.intervention.after.logits, expected, atol=1e-5, rtol=1e-5)


def test_removing_the_marker_concept_flips_the_prediction(task):
    i = next(i for i, y in enumerate(task["test_y"]) if y == 0)
    result = _explain(task, i, interventions=["zero:concept=red circle"])
    assert result.predicted == 0
    assert float(result.intervention.after_explanation.logit) < float(result.intervention.before_explanation.logit) - 1
    assert int(result.intervention.after.logits.argmax()) != 0


def test_intervention_syntax():
    names = CONCEPT_NAMES
    spec = parse_intervention("zero:concept=Red Circle", names)
    assert (spec.kind, spec.target, spec.concepts) == ("zero", "concept", (0,))
    assert parse_intervention("zero:window=3", names, num_windows=5).windows == (3,)
    assert parse_intervention("zero:window=1-3|0", names, num_windows=5).windows == (1, 2, 3, 0)
    spec = parse_intervention("set:cell=3,red circle,0.5", names)
    assert (spec.kind, spec.cells, spec.value) == ("set", ((3, 0),), 0.5)
    assert parse_intervention("set:concept=blue square|#2,-1", names).concepts == (1, 2)
    spec = parse_intervention("noise:window=2,0.25", names)
    assert (spec.kind, spec.windows, spec.value) == ("noise", (2,), 0.25)
    spec = parse_intervention("attn:uniform:concept=red circle|blue square", names)
    assert (spec.kind, spec.attention, spec.concepts) == ("attention", "uniform", (0, 1))


@pytest.mark.parametrize("text, pattern", [
    ("zero:concept=red circel", r"unknown concept 'red circel'; did you mean 'red circle'"),
    ("zero:concept=banana", r"unknown concept 'banana'"),
    ("zero:concept=#99", r"concept index #99 is out of range"),
    ("zero:window=7", r"window 7 does not exist \(the video has 5 windows"),
    ("zero:window=a", r"window 'a' is not a window index"),
    ("set:cell=1,red circle,high", r"value 'high' is not a number"),
    ("set:concept=red circle", r"set needs a trailing ,VALUE"),
    ("blur:concept=red circle", r"unknown intervention 'blur:concept'"),
    ("attn:blur:concept=red circle", r"attention interventions read attn:KIND:concept=NAME"),
    ("zero:cell=3", r"cell '3' must read WINDOW,CONCEPT"),
    ("zero:concept", r"expected MODE:TARGET=ARGUMENTS"),
])
def test_intervention_syntax_errors_name_the_problem(text, pattern):
    with pytest.raises(InterventionSyntaxError, match=pattern) as info:
        parse_intervention(text, CONCEPT_NAMES, num_windows=5)
    assert text in str(info.value)


def test_only_one_attention_kind_at_a_time():
    with pytest.raises(InterventionSyntaxError, match="one attention kind"):
        parse_interventions(["attn:uniform:concept=red circle", "attn:reverse:concept=blue square"], CONCEPT_NAMES)


# --- report.html ---------------------------------------------------------------------------------------


def _payload(page: str) -> dict:
    start = page.index("<script type='application/json' id='motif-data'>")
    body = page[start:].split(">", 1)[1]
    return json.loads(body[:body.index("</script>")])


def _float32(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4")


def test_report_is_self_contained_and_holds_the_exact_readout(task, tmp_path):
    result = _explain(task, 1, interventions=["zero:window=2"])
    thumbnails = {t: np.random.default_rng(t).integers(0, 255, (18, 24, 3), dtype=np.uint8)
                  for t in range(len(task["test_x"][1]))}
    page = write_explanation(result, tmp_path, thumbnails)["report"].read_text()
    assert "https://" not in page and page.count("http://") == page.count("http://www.w3.org/2000/svg")
    collector = _Collector()
    collector.feed(page)
    collector.close()
    assert all(url.startswith("data:") for url in collector.urls)  # no src / href leaves the file
    assert not {"link", "iframe", "object", "embed"} & set(collector.tags) and collector.tags.count("script") == 2
    assert "url(" not in page and "@import" not in page and "<script src" not in page
    data = _payload(page)
    t, c, k = data["shape"]
    assert (t, c, k) == (len(task["test_x"][1]), len(CONCEPT_NAMES), len(CLASS_NAMES))
    np.testing.assert_array_equal(_float32(data["z"]).reshape(t, c), result.output.concepts.numpy())
    np.testing.assert_array_equal(_float32(data["W"]).reshape(k, c), task["model"].classifier.weight.detach().numpy())
    np.testing.assert_array_equal(_float32(data["b"]), task["model"].classifier.bias.detach().numpy())
    assert data["concepts"] == CONCEPT_NAMES and data["classes"] == CLASS_NAMES and len(data["thumbnails"]) == t
    assert data["colours"][:3] == concept_colours(["red circle", "blue square", "green triangle"])
    assert data["cli_intervention"]["specs"] == ["zero:window=2"]
    maps = np.frombuffer(base64.b64decode(data["attention"]["maps"]), np.uint8)
    assert maps.size == len(data["attention"]["concepts"]) * t * t and maps.max() == 255  # the shared maximum


def test_report_links_a_large_clip_and_drops_maps_over_budget(task, tmp_path):
    from motif.explain.report import report_payload
    from motif.video import write_video

    result = _explain(task, 1)
    frames = [np.full((32, 48, 3), 9 * i % 255, np.uint8) for i in range(12)]
    (tmp_path / "videos").mkdir()
    clip = write_video(tmp_path / "videos" / "clip.mp4", frames, fps=4.0)
    embedded = report_payload(result, video_path=clip, out_dir=tmp_path / "out")
    assert embedded["video"]["src"].startswith("data:video/mp4;base64,") and not embedded["video"]["transcoded"]
    linked = report_payload(result, video_path=clip, out_dir=tmp_path / "out", embed_video_bytes=10,
                            attention_budget_bytes=len(result.spans) ** 2)
    assert linked["video"]["src"] == "../videos/clip.mp4" and not linked["video"]["embedded"]
    assert len(linked["attention"]["concepts"]) == 1
    none = report_payload(result, attention_budget_bytes=0)
    assert "too large" in none["attention"]["note"] and none["video"]["num_windows"] == len(result.spans)


def test_concept_axis_names_follow_the_checkpoint():
    from motif.explain.report import ReportError, concept_axis_names

    assert concept_axis_names(["a", "b"], 2) == ["a", "b"]
    assert concept_axis_names(["a", "b"], 4) == ["a [0]", "b [0]", "a [1]", "b [1]"]
    with pytest.raises(ReportError, match="3 channels but there are 2 concept names"):
        concept_axis_names(["a", "b"], 3)


def test_concept_colours_follow_colour_words():
    colours = concept_colours(["red circle", "a Blue square", "jumping", "red square", "paddle"])
    assert colours[0] == COLOUR_WORDS["red"] and colours[1] == COLOUR_WORDS["blue"]
    assert colours[3] != colours[0] and colours[3].startswith("#")  # a shade of red, apart from the first
    assert colours[2] == PALETTE[2] and colours[4] == PALETTE[4]  # by bank index: stable in every view
    assert signed_term(-0.145) == "− 0.145" and signed_term(10.6, 2) == "+ 10.60"


# --- from a video file ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def video_checkpoint(task, tmp_path_factory):
    """A checkpoint of the marked model with a tiny open_clip backbone, and a small video."""
    return save_video_checkpoint(tmp_path_factory.mktemp("explain_video"), task["model"])


def test_explain_video_writes_a_report(video_checkpoint, tmp_path):
    from motif.explain import explain_video

    result, paths = explain_video(video_checkpoint["ckpt"], video_checkpoint["video"], tmp_path,
                                  interventions=["attn:uniform:concept=red circle"],
                                  backbone=video_checkpoint["backbone"])
    assert len(result.spans) == 6  # 22 frames in windows of 4, the last one short
    torch.testing.assert_close(result.spans[-1], torch.tensor([20 / 8, 22 / 8]))
    data = json.loads(paths["json"].read_text())
    assert abs(data["decomposition"]["residual"]) < 1e-4
    page = paths["report"].read_text()
    assert page.count("data:image/jpeg") == 6  # a thumbnail per window
    assert '"src":"data:video/mp4;base64,' in page  # the clip, embedded


def test_explain_tool_reports_a_bad_video_clearly(video_checkpoint, tmp_path, capsys, monkeypatch):
    import motif.explain.video as video_module

    monkeypatch.setattr(video_module, "load_backbone_from_identity",
                        lambda identity, device: video_checkpoint["backbone"])
    fake = tmp_path / "not_a_video.mp4"
    fake.write_text("this is text, not a video")
    tool = load_tool("explain")
    code = tool.main(["--ckpt", str(video_checkpoint["ckpt"]), "--video", str(fake), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "not_a_video.mp4" in err and err.startswith("error: ")
    code = tool.main(["--ckpt", str(video_checkpoint["ckpt"]), "--video", str(video_checkpoint["video"]),
                      "--out", str(tmp_path / "out"), "--intervene", "zero:concept=purple"])
    assert code == 2 and "unknown concept 'purple'" in capsys.readouterr().err
    code = tool.main(["--ckpt", str(video_checkpoint["ckpt"]), "--video", str(video_checkpoint["video"]),
                      "--out", str(tmp_path / "out"), "--class", "green triangle shown"])
    assert code == 0 and "explained class: green triangle shown" in capsys.readouterr().out


def test_explain_tool_explains_several_videos_and_skips_a_bad_one(video_checkpoint, tmp_path, capsys, monkeypatch):
    import motif.explain.video as video_module

    loads = []
    monkeypatch.setattr(video_module, "load_backbone_from_identity",
                        lambda identity, device: loads.append(device) or video_checkpoint["backbone"])
    second = tmp_path / "second.mp4"
    second.write_bytes(video_checkpoint["video"].read_bytes())
    fake = tmp_path / "not_a_video.mp4"
    fake.write_text("this is text, not a video")
    tool = load_tool("explain")
    videos = [str(video_checkpoint["video"]), str(fake), str(second)]
    code = tool.main(["--ckpt", str(video_checkpoint["ckpt"]), "--video", *videos, "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 1 and len(loads) == 1   # one backbone for all videos
    assert "skipped" in captured.err and "not_a_video.mp4" in captured.err and "1 of 3 videos skipped" in captured.err
    single = explain_video_json(video_checkpoint, tmp_path / "single")
    for stem in (video_checkpoint["video"].stem, "second"):
        written = json.loads((tmp_path / "out" / stem / "explanation.json").read_text())
        assert written["decomposition"] == single["decomposition"]
        assert (tmp_path / "out" / stem / "report.html").is_file()
    assert not (tmp_path / "out" / "not_a_video").exists()
    with pytest.raises(SystemExit) as stopped:   # two videos with one stem would share a folder
        tool.main(["--ckpt", str(video_checkpoint["ckpt"]), "--video", str(second), str(tmp_path / "x" / "second.mp4"),
                   "--out", str(tmp_path / "out2")])
    assert stopped.value.code == 2 and "share the file stem(s) second" in capsys.readouterr().err


def explain_video_json(video_checkpoint, out_dir) -> dict:
    from motif.explain import explain_video

    _, paths = explain_video(video_checkpoint["ckpt"], video_checkpoint["video"], out_dir,
                             backbone=video_checkpoint["backbone"])
    return json.loads(paths["json"].read_text())


def test_explain_video_reads_the_embedding_cache(video_checkpoint):
    from motif.cache import EmbeddingCache
    from motif.checkpoint import load_motif_checkpoint
    from motif.concepts import concept_activations
    from motif.explain import explain_video

    ckpt = load_motif_checkpoint(video_checkpoint["ckpt"])
    cache = EmbeddingCache.for_backbone(video_checkpoint["folder"] / "cache", video_checkpoint["backbone"], ckpt.video)
    embeddings = torch.randn(6, ckpt.text_embeddings.shape[1], generator=torch.Generator().manual_seed(3))
    spans = spans_of(6, 0.75)
    cache.save("clip", embeddings, spans)
    result, paths = explain_video(ckpt, video_checkpoint["video"], None, cache_dir=video_checkpoint["folder"] / "cache",
                                  backbone=video_checkpoint["backbone"])
    assert paths == {}
    torch.testing.assert_close(result.spans, spans)
    x = ckpt.standardizer(concept_activations(embeddings, ckpt.text_embeddings))
    torch.testing.assert_close(result.output.logits, ckpt.model(x[None]).logits[0])


def test_figures_share_the_attention_scale_and_the_concept_colours():
    import matplotlib.colors as mcolors
    import matplotlib.pyplot as plt

    from motif.plots.figures import attention_maps_figure, concept_timeline_figure

    spans = spans_of(4).numpy()
    maps = np.stack([np.full((4, 4), 0.25), np.eye(4) * 0.9 + 0.025])
    fig = attention_maps_figure(spans, maps, ["flat", "peaked"])
    meshes = [ax.collections[0] for ax in fig.axes if ax.collections and ax.get_title()]
    assert len(meshes) == 2 and {m.get_clim() for m in meshes} == {(0.0, float(maps.max()))}
    plt.close(fig)
    colours = concept_colours(["red circle", "blue square"])
    fig = concept_timeline_figure(spans, np.random.default_rng(0).random((4, 2)), ["red circle", "blue square"],
                                  colours=colours)
    lines = [p for p in fig.axes[0].patches if not p.get_fill()]
    assert [mcolors.to_hex(p.get_edgecolor()) for p in lines] == colours
    plt.close(fig)

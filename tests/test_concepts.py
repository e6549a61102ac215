"""Concept banks (parsing, de-duplication, shipped banks), activations and standardisation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from motif.concepts import (
    ConceptBank,
    ConceptBankError,
    ConceptBankNotFoundError,
    ConceptStandardizer,
    concept_activations,
    embed_concept_bank,
    near_duplicate_keep,
)
from motif.data.annotations import BREAKFAST_ACTIVITIES, camel_case_to_words, underscores_to_words

REPO = Path(__file__).resolve().parents[1]
BANKS = REPO / "data" / "concepts"


# --- reading banks ---------------------------------------------------------------------------------


def test_text_bank_ignores_comments_blanks_and_exact_duplicates(tmp_path):
    path = tmp_path / "bank.txt"
    path.write_text("# objects\nbasketball hoop\n\n  Paddle \nwater   splash\n# motion\npaddle\njumping\n")
    bank = ConceptBank.from_file(path)
    assert bank.names == ["basketball hoop", "Paddle", "water splash", "jumping"]
    assert bank.classes_of == [[], [], [], []]


def test_yaml_groups_merge_classes_of_exact_duplicates(tmp_path):
    path = tmp_path / "bank.yaml"
    path.write_text("kayaking: [paddle, river, Water Splash]\nrafting: [raft, water splash, paddle]\n")
    bank = ConceptBank.from_file(path)
    assert bank.names == ["paddle", "river", "Water Splash", "raft"]
    assert bank.classes_of == [["kayaking", "rafting"], ["kayaking"], ["kayaking", "rafting"], ["rafting"]]
    assert bank.classes == ["kayaking", "rafting"]


def test_json_flat_list_and_groups(tmp_path):
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps(["a ball", "a net"]))
    assert ConceptBank.from_file(flat).names == ["a ball", "a net"]
    grouped = tmp_path / "grouped.json"
    grouped.write_text(json.dumps({"tennis": ["racket", "net"], "volleyball": ["net"]}))
    assert ConceptBank.from_file(grouped).classes_of == [["tennis"], ["tennis", "volleyball"]]


@pytest.mark.parametrize(
    "name, content, pattern",
    [
        ("numbers.json", "[1, 2, 3]", r"numbers\.json.*entry 0 is 1 \(int\); concepts must be text"),
        ("object.json", '{"a": 3}', r"class 'a' must map to a list"),
        ("scalar.yaml", "42\n", r"must be a list of concept phrases or a mapping"),
        ("empty.txt", "# only a comment\n\n", r"empty\.txt.*holds no concepts"),
        ("empty.yaml", "", r"holds no concepts"),
        ("groups.yaml", "a: []\nb: []\n", r"holds no concepts"),
        ("broken.json", "[\"a\", ", r"not valid JSON"),
        ("blank.yaml", "a: ['  ']\n", r"empty phrase"),
        ("bank.csv", "a,b\n", r"unsupported extension"),
    ],
)
def test_files_that_are_not_banks_are_rejected_with_the_reason(tmp_path, name, content, pattern):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ConceptBankError, match=pattern):
        ConceptBank.from_file(path)


def test_binary_and_missing_files_are_rejected(tmp_path):
    binary = tmp_path / "weights.txt"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConceptBankError, match="binary"):
        ConceptBank.from_file(binary)
    with pytest.raises(ConceptBankNotFoundError, match="does not exist"):
        ConceptBank.from_file(tmp_path / "nope.yaml")


# --- near-duplicate removal ------------------------------------------------------------------------


def _unit(angle_deg: float) -> torch.Tensor:
    angle = torch.tensor(angle_deg) * torch.pi / 180
    return torch.stack([torch.cos(angle), torch.sin(angle), torch.tensor(0.0)])


class _LookupTextEncoder:
    """encode_text by table look-up, to check alignment of names and embeddings."""

    def __init__(self, table: dict[str, torch.Tensor]) -> None:
        self.table = table
        self.calls: list[list[str]] = []

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        self.calls.append(list(texts))
        return torch.stack([self.table[t] for t in texts])


def test_near_duplicates_are_dropped_greedily_in_bank_order():
    # A at 0 deg, B at 20 (cos A-B 0.94), C at 40 (cos B-C 0.94, cos A-C 0.77), D orthogonal.
    bank = ConceptBank.from_entries({"k1": ["A"], "k2": ["B"], "k3": ["C"], "k4": ["D"]})
    directions = torch.stack([_unit(0), _unit(20), _unit(40), torch.tensor([0.0, 0.0, 3.0])])
    emb = directions * torch.tensor([[1.0], [5.0], [2.0], [1.0]])  # lengths do not matter
    encoder = _LookupTextEncoder(dict(zip("ABCD", emb)))
    kept, kept_emb = embed_concept_bank(bank, encoder, similarity_threshold=0.9)
    # C survives: it is compared with the KEPT concepts (A), not with the dropped B
    assert kept.names == ["A", "C", "D"]
    assert kept.classes_of == [["k1", "k2"], ["k3"], ["k4"]]
    assert torch.equal(kept_emb, emb[[0, 2, 3]])
    assert embed_concept_bank(bank, encoder, similarity_threshold=0.95)[0].names == ["A", "B", "C", "D"]
    assert embed_concept_bank(bank, encoder, similarity_threshold=0.7)[0].names == ["A", "D"]


def test_dropped_concept_joins_its_most_similar_kept_concept():
    bank = ConceptBank.from_entries({"k1": ["A"], "k2": ["B"], "k3": ["C"]})
    emb = torch.stack([_unit(0), _unit(90), _unit(80)])  # C is closer to B (cos 0.98) than to A
    kept, _ = embed_concept_bank(bank, _LookupTextEncoder(dict(zip("ABC", emb))), similarity_threshold=0.9)
    assert kept.names == ["A", "B"] and kept.classes_of == [["k1"], ["k2", "k3"]]


def test_near_duplicate_keep_checks_shapes():
    with pytest.raises(ConceptBankError, match="C = 3 concepts"):
        near_duplicate_keep(torch.randn(2, 4), 0.9, expected=3)


def test_embed_concept_bank_keeps_embeddings_aligned_with_names(tmp_path):
    path = tmp_path / "bank.yaml"
    path.write_text("run: [legs, shoes, sneakers]\nswim: [water]\n")
    table = {"legs": _unit(0), "shoes": _unit(60), "sneakers": _unit(62), "water": torch.tensor([0.0, 0.0, 1.0])}
    bank, emb = embed_concept_bank(path, _LookupTextEncoder(table), similarity_threshold=0.9)
    assert bank.names == ["legs", "shoes", "water"]
    torch.testing.assert_close(emb, torch.stack([table[n] for n in bank.names]))
    encoder = _LookupTextEncoder({f"a photo of {k}": v for k, v in table.items()})
    embed_concept_bank(path, encoder, template="a photo of {}")
    assert encoder.calls == [["a photo of legs", "a photo of shoes", "a photo of sneakers", "a photo of water"]]


# --- activations -------------------------------------------------------------------------------------


def test_activations_are_clamped_cosines():
    g = torch.Generator().manual_seed(0)
    windows, texts = torch.randn(2, 7, 5, generator=g), torch.randn(4, 5, generator=g)
    a = concept_activations(windows, texts)
    expected = F.cosine_similarity(windows[:, :, None, :], texts[None, None], dim=-1).clamp(min=0)
    assert a.shape == (2, 7, 4)
    torch.testing.assert_close(a, expected)
    assert (a == 0).any() and (a >= 0).all()
    torch.testing.assert_close(concept_activations(windows * 3.0, texts * 0.5), a)  # scale invariant
    with pytest.raises(ValueError, match="same backbone"):
        concept_activations(windows, torch.randn(4, 6))


# --- standardisation -------------------------------------------------------------------------------


def _videos(seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(t, 6, generator=g) * torch.arange(1, 7) for t in (3, 17, 1, 40)]


def test_standardizer_statistics_are_over_all_training_windows():
    videos = _videos()
    std = ConceptStandardizer(6).fit(videos)
    allw = torch.cat(videos).double()
    torch.testing.assert_close(std.mean, allw.mean(0).float())
    torch.testing.assert_close(std.std, allw.std(0, unbiased=False).float())
    assert int(std.num_windows) == 61
    x = std(torch.cat(videos))
    torch.testing.assert_close(x.mean(0), torch.zeros(6), atol=1e-5, rtol=0)
    torch.testing.assert_close(x.std(0, unbiased=False), torch.ones(6), atol=1e-5, rtol=0)
    # windows weigh equally: the mean of per-video means would differ
    assert not torch.allclose(std.mean, torch.stack([v.mean(0) for v in videos]).mean(0), atol=1e-3)


def test_constant_concept_std_is_clamped():
    videos = [torch.cat([torch.rand(5, 1), torch.full((5, 1), 0.3)], 1) for _ in range(3)]
    std = ConceptStandardizer(2).fit(videos)
    assert float(std.std[1]) == pytest.approx(1e-6)
    assert torch.isfinite(std(videos[0])).all()


def test_padding_mask_and_distributed_reduce_give_the_same_stats():
    videos = _videos(1)
    reference = ConceptStandardizer(6).fit(videos)
    padded = torch.zeros(2, 40, 6)
    mask = torch.ones(2, 40, dtype=torch.bool)
    padded[0, :17], mask[0, :17] = videos[1], False
    padded[1, :40], mask[1, :40] = videos[3], False
    shard_a, shard_b = ConceptStandardizer(6), ConceptStandardizer(6)
    shard_a.update(padded, padding_mask=mask)
    shard_b.update(videos[0])
    shard_b.update(videos[2])
    other = shard_b._moments.clone()
    shard_a.finalize(reduce=lambda moments: moments + other)  # what an all-reduce sum does
    torch.testing.assert_close(shard_a.mean, reference.mean)
    torch.testing.assert_close(shard_a.std, reference.std)


def test_state_dict_is_plain_tensors_and_round_trips(tmp_path):
    std = ConceptStandardizer(6).fit(_videos())
    state = std.state_dict()
    assert set(state) == {"mean", "std", "num_windows"} and all(isinstance(v, torch.Tensor) for v in state.values())
    torch.save(state, tmp_path / "s.pt")
    again = ConceptStandardizer.from_state_dict(torch.load(tmp_path / "s.pt", weights_only=True))
    x = torch.rand(9, 6)
    torch.testing.assert_close(again(x), std(x))


def test_standardizer_inverse_gives_the_raw_activations_back():
    raw = [torch.rand(6, 3) * 5 + 1 for _ in range(4)]
    standardizer = ConceptStandardizer(3).fit(raw)
    torch.testing.assert_close(standardizer.inverse(standardizer(raw[0])), raw[0])


def test_unfitted_standardizer_refuses_to_run():
    with pytest.raises(RuntimeError, match="not fitted"):
        ConceptStandardizer(3)(torch.rand(2, 3))
    with pytest.raises(RuntimeError, match="not fitted"):
        ConceptStandardizer(3).inverse(torch.rand(2, 3))
    with pytest.raises(ValueError, match="saw no windows"):
        ConceptStandardizer(3).fit([])
    with pytest.raises(ValueError, match="4 concepts, the standardizer 3"):
        ConceptStandardizer(3).update(torch.rand(2, 4))


# --- shipped banks -----------------------------------------------------------------------------------

UCF101_CLASSIND = (
    "ApplyEyeMakeup ApplyLipstick Archery BabyCrawling BalanceBeam BandMarching BaseballPitch Basketball "
    "BasketballDunk BenchPress Biking Billiards BlowDryHair BlowingCandles BodyWeightSquats Bowling "
    "BoxingPunchingBag BoxingSpeedBag BreastStroke BrushingTeeth CleanAndJerk CliffDiving CricketBowling "
    "CricketShot CuttingInKitchen Diving Drumming Fencing FieldHockeyPenalty FloorGymnastics FrisbeeCatch "
    "FrontCrawl GolfSwing Haircut Hammering HammerThrow HandstandPushups HandstandWalking HeadMassage HighJump "
    "HorseRace HorseRiding HulaHoop IceDancing JavelinThrow JugglingBalls JumpingJack JumpRope Kayaking "
    "Knitting LongJump Lunges MilitaryParade Mixing MoppingFloor Nunchucks ParallelBars PizzaTossing "
    "PlayingCello PlayingDaf PlayingDhol PlayingFlute PlayingGuitar PlayingPiano PlayingSitar PlayingTabla "
    "PlayingViolin PoleVault PommelHorse PullUps Punch PushUps Rafting RockClimbingIndoor RopeClimbing Rowing "
    "SalsaSpin ShavingBeard Shotput SkateBoarding Skiing Skijet SkyDiving SoccerJuggling SoccerPenalty "
    "StillRings SumoWrestling Surfing Swing TableTennisShot TaiChi TennisSwing ThrowDiscus TrampolineJumping "
    "Typing UnevenBars VolleyballSpiking WalkingWithDog WallPushups WritingOnBoard YoYo"
).split()
HMDB51_FOLDERS = (
    "brush_hair cartwheel catch chew clap climb climb_stairs dive draw_sword dribble drink eat fall_floor "
    "fencing flic_flac golf handstand hit hug jump kick kick_ball kiss laugh pick pour pullup punch push pushup "
    "ride_bike ride_horse run shake_hands shoot_ball shoot_bow shoot_gun sit situp smile smoke somersault stand "
    "swing_baseball sword sword_exercise talk throw turn walk wave"
).split()


def _expected_names(dataset: str) -> list[str] | None:
    """The class names the annotation readers produce, in their label order."""
    if dataset == "ucf101":
        return [camel_case_to_words(name) for name in UCF101_CLASSIND]
    if dataset == "hmdb51":
        return [underscores_to_words(name) for name in HMDB51_FOLDERS]
    if dataset == "breakfast":
        return [BREAKFAST_ACTIVITIES[name] for name in sorted(BREAKFAST_ACTIVITIES)]
    return None  # SSv2: the labels file's templates (brackets removed), checked for count and order


@pytest.mark.parametrize("dataset, num_classes", [("ucf101", 101), ("hmdb51", 51), ("ssv2", 174), ("breakfast", 10)])
def test_shipped_banks_cover_every_class(dataset, num_classes):
    bank = ConceptBank.from_file(BANKS / f"{dataset}.yaml")
    assert len(bank.classes) == num_classes
    for class_name in bank.classes:
        assert sum(class_name in group for group in bank.classes_of) >= 3, class_name
    assert len(bank) >= 2 * num_classes
    expected = _expected_names(dataset)
    if expected is not None:
        assert bank.classes == expected
    else:
        assert bank.classes == sorted(bank.classes)  # the labels file numbers templates alphabetically
        assert {"Tearing something into two pieces", "Pushing something from left to right",
                "Wiping something off of something"} <= set(bank.classes)

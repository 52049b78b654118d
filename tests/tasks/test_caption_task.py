"""Captioning end to end: the image readers (PNG folder, .npz of images or features), the digit strips, the
captioner with and without spatial attention, `rnnkit caption`, and images of the wrong size."""

import json

import numpy as np
import pytest
import torch

from rnnkit.cli.main import main
from rnnkit.data.images import WORDS, digit_strips, read_captions, write_caption_folder
from rnnkit.generation.seq2seq import beam_decode, greedy_decode
from rnnkit.models.captioning import ImageCaptioner, ImageEncoder

from .helpers import last_record, train_generated

SMALL = ["--model.hidden_size", "64", "--model.embedding_size", "32", "--model.num_layers", "1",
         "--model.dropout", "0", "--data.batch_size", "32", "--train.lr", "3e-3", "--train.checkpoint_every", "500"]


def test_digit_strips_are_captioned_by_their_digits_and_test_parts_are_disjoint():
    train = digit_strips(200, seed=0)
    test = digit_strips(50, seed=0, part="test", exclude=[c for _, c in train])
    assert not {c for _, c in train} & {c for _, c in test}
    for image, caption in train[:20]:
        words = caption.split()
        assert 3 <= len(words) <= 5 and set(words) <= set(WORDS)
        assert image.shape == (1, 8, 40) and image.dtype == np.float32 and 0 <= image.min() <= image.max() <= 1
        assert (image[0, :, 8 * len(words):] == 0).all()  # padding after the last digit
    assert digit_strips(10, seed=0)[3][1] == train[3][1]


def test_caption_readers_take_a_png_folder_and_npz_files(tmp_path):
    pairs = digit_strips(6, seed=1)
    captions = write_caption_folder(pairs, tmp_path / "pngs")
    back = read_captions(captions)
    assert [c for _, c in back] == [c for _, c in pairs]
    assert all(np.abs(a - b).max() <= 0.5 / 255 + 1e-6 for (a, _), (b, _) in zip(back, pairs))
    images = np.stack([(p[0][0] * 255).astype(np.uint8) for p in pairs])  # (N, H, W) uint8
    np.savez(tmp_path / "imgs.npz", images=images, captions=np.array([c for _, c in pairs]))
    assert read_captions(tmp_path / "imgs.npz")[0][0].shape == (1, 8, 40)
    np.savez(tmp_path / "feats.npz", features=np.random.rand(6, 5, 7), captions=np.array([c for _, c in pairs]))
    assert read_captions(tmp_path / "feats.npz")[2][0].shape == (5, 7)
    np.savez(tmp_path / "bad.npz", images=images)
    with pytest.raises(ValueError, match="expected arrays 'captions'"):
        read_captions(tmp_path / "bad.npz")
    (tmp_path / "bad.txt").write_text("missing.png\tone two\n")
    with pytest.raises(ValueError, match="missing.png: no such image file"):
        read_captions(tmp_path / "bad.txt")


def test_image_encoder_grid_and_shape_errors():
    enc = ImageEncoder(1, (8, 16))
    feats, grid = enc(torch.rand(2, 1, 8, 40))
    assert feats.shape == (2, 20, 16) and grid == (2, 10)
    with pytest.raises(ValueError, match=r"expected images \(batch, 1, height, width\)"):
        enc(torch.rand(2, 3, 8, 40))


@pytest.mark.parametrize("attention", ["none", "additive", "general"])
@pytest.mark.parametrize("context", ["init", "input", "both"])
def test_captioner_trains_and_decodes_images_and_given_features(attention, context):
    targets = torch.tensor([[5, 6, 2], [7, 2, -100]])
    for model, inputs in ((ImageCaptioner(9, image_channels=1, channels=(4, 8), hidden_size=8, embedding_size=4,
                                          attention=attention, context=context), torch.rand(2, 1, 8, 16)),
                          (ImageCaptioner(9, image_channels=None, feature_size=6, hidden_size=8, embedding_size=4,
                                          attention=attention, context=context), torch.rand(2, 3, 6))):
        out = model(inputs, targets)
        out.loss.backward()
        assert out.prediction.shape == (2, 3, 9) and torch.isfinite(out.loss)
        for h in greedy_decode(model, inputs, max_length=4) + beam_decode(model, inputs, beam_width=2, max_length=4):
            assert (h.attention is None) == (attention == "none")
            if h.attention is not None:
                assert torch.allclose(h.attention.sum(-1), torch.ones(len(h.attention)))


@pytest.fixture(scope="module")
def caption_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("caption") / "run"
    train_generated(run, "caption", "digit-strips", 600, SMALL)
    return run


def test_a_small_captioner_learns_the_digit_strips(caption_run):
    final = last_record(caption_run)
    assert final["split"] == "val" and final["token_accuracy"] > 0.7 and final["exact_match"] > 0.2  # chance: 0
    assert json.loads((caption_run / "caption.json").read_text())["input_shape"] == [1, 8, 40]


def test_caption_cli_prints_captions_and_draws_attention(caption_run, tmp_path, capsys):
    test = digit_strips(4, seed=7, part="test")
    write_caption_folder(test, tmp_path / "imgs")
    paths = [str(tmp_path / "imgs" / f"{i:06d}.png") for i in range(4)]
    png = tmp_path / "att.png"
    assert main(["caption", str(caption_run), *paths, "--beam", "3", "--attention-png", str(png)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == paths
    assert all(set(line.split("\t")[1].split()) <= set(WORDS) for line in lines)
    assert (tmp_path / "att-1.png").stat().st_size > 1000 and (tmp_path / "att-4.png").exists()


def test_caption_cli_refuses_an_image_of_the_wrong_size_and_other_runs(caption_run, tmp_path, capsys):
    from PIL import Image

    Image.new("L", (20, 8)).save(tmp_path / "small.png")
    assert main(["caption", str(caption_run), str(tmp_path / "small.png")]) == 2
    assert "the image is 8×20 (height×width); this run was trained on 8×40 images" in capsys.readouterr().err
    Image.new("RGB", (40, 8)).save(tmp_path / "rgb.png")  # converted to the run's one channel
    assert main(["caption", str(caption_run), str(tmp_path / "rgb.png")]) == 0
    assert main(["translate", str(caption_run), "one"]) == 2
    assert "translate decodes seq2seq runs" in capsys.readouterr().err


def test_evaluate_a_caption_file_from_the_run_alone(caption_run, tmp_path, capsys):
    captions = write_caption_folder(digit_strips(64, seed=3, part="test"), tmp_path / "test")
    assert main(["evaluate", str(caption_run), "--data.path", str(captions)]) == 0
    metrics = dict(zip(*[iter(capsys.readouterr().out.split())] * 2))
    assert 0 <= float(metrics["exact_match"]) <= 1 and float(metrics["bleu"]) > 0


def test_bad_cnn_channels_are_named(tmp_path, capsys):
    assert main(["train", "--data.task", "caption", "--data.path", "digit-strips", "--data.num_examples", "100",
                 "--model.cnn_channels", "32,x", "--run-dir", str(tmp_path / "r")]) == 2
    assert "model.cnn_channels must be positive integers" in capsys.readouterr().err

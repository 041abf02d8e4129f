"""The image models: shapes, gradients, save/load round trips, transfer-learning surgery."""

from __future__ import annotations

import pytest
import torch

from seqkit.vision.models import (
    AutoencoderConfig,
    CNNConfig,
    CNNForImageClassification,
    ConvAutoencoder,
    MLPConfig,
    MLPForImageClassification,
    ResidualBlock,
    ResNetConfig,
    ResNetForImageClassification,
)

TINY = [
    (MLPConfig, MLPForImageClassification, {"hidden_sizes": [16]}),
    (CNNConfig, CNNForImageClassification, {"conv_channels": [4, 8], "hidden_size": 16}),
    (ResNetConfig, ResNetForImageClassification, {"widths": [4, 8]}),
]


@pytest.mark.parametrize("config_class, model_class, extra", TINY, ids=["mlp", "cnn", "resnet"])
@pytest.mark.parametrize("channels, size", [(1, 8), (3, 12)])
def test_classifiers_shapes_gradients_and_round_trip(
    tmp_path, config_class, model_class, extra, channels, size
):
    torch.manual_seed(0)
    config = config_class(
        image_size=size,
        num_channels=channels,
        num_labels=3,
        image_mean=[0.5] * channels,
        image_std=[0.25] * channels,
        **extra,
    )
    model = model_class(config)
    images, labels = torch.rand(5, channels, size, size), torch.tensor([0, 1, 2, 0, 1])
    output = model(pixel_values=images, labels=labels)
    assert output.logits.shape == (5, 3)
    output.loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    model.save_pretrained(tmp_path)
    loaded = model_class.from_pretrained(tmp_path)
    model.eval()
    loaded.eval()
    torch.testing.assert_close(loaded(images).logits, model(images).logits)


def test_wrong_image_shape_names_what_was_expected():
    model = CNNForImageClassification(CNNConfig(num_labels=10))
    with pytest.raises(ValueError, match=r"1 channel\(s\) and 8x8 pixels.*got \(2, 3, 8, 8\)"):
        model(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="8x8"):
        model(torch.rand(2, 1, 16, 16))


def test_residual_block_shortcut_is_identity_unless_the_shape_changes():
    assert isinstance(ResidualBlock(8, 8, 1).shortcut, torch.nn.Identity)
    block = ResidualBlock(8, 16, 2)
    assert not isinstance(block.shortcut, torch.nn.Identity)
    assert block(torch.rand(2, 8, 8, 8)).shape == (2, 16, 4, 4)


def test_freeze_features_trains_only_the_head_and_keeps_batchnorm_statistics():
    torch.manual_seed(0)
    model = ResNetForImageClassification(ResNetConfig(widths=[4, 8], num_labels=10))
    model.reset_classifier(3)
    model.freeze_features()
    model.train()
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["classifier.weight", "classifier.bias"]  # stem and blocks frozen
    cnn = CNNForImageClassification(CNNConfig(conv_channels=[4, 8], num_labels=10))
    cnn.freeze_features()
    assert [n for n, p in cnn.named_parameters() if p.requires_grad] == [
        "fc.0.weight", "fc.0.bias", "classifier.weight", "classifier.bias"
    ]  # fmt: skip
    cnn.freeze_features(up_to_classifier=True)
    assert [n for n, p in cnn.named_parameters() if p.requires_grad] == [
        "classifier.weight", "classifier.bias"
    ]  # fmt: skip
    before = model.stem[1].running_mean.clone()
    loss = model(pixel_values=torch.rand(4, 1, 8, 8), labels=torch.tensor([0, 1, 2, 0])).loss
    loss.backward()
    torch.testing.assert_close(model.stem[1].running_mean, before)
    assert model.config.num_labels == 3


def test_denoising_autoencoder_reconstructs_in_unit_range(tmp_path):
    model = ConvAutoencoder(AutoencoderConfig(channels=[4, 8]))
    clean = torch.rand(3, 1, 8, 8)
    out = model(pixel_values=clean, clean_pixel_values=clean)
    assert out.reconstruction.shape == clean.shape
    pixels = out.reconstruction.detach()
    assert float(pixels.min()) >= 0 and float(pixels.max()) <= 1
    out.loss.backward()
    model.save_pretrained(tmp_path)
    torch.testing.assert_close(
        ConvAutoencoder.from_pretrained(tmp_path)(clean).reconstruction,
        model(clean).reconstruction,
    )


def test_cnn_feature_maps_one_per_convolution():
    model = CNNForImageClassification(CNNConfig(conv_channels=[4, 8], num_labels=10))
    maps = model.feature_maps(torch.rand(1, 1, 8, 8))
    assert [tuple(m.shape) for m in maps] == [(1, 4, 8, 8), (1, 8, 4, 4)]

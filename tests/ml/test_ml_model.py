from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from ml.config import ModelConfig
from ml.model import EduPulseModel


def _inputs(n: int, t: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, t, 5, generator=g)
    mask = (torch.rand(n, t, 5, generator=g) > 0.2).float()
    lengths = torch.randint(1, t + 1, (n,), generator=g)
    pad = torch.arange(t)[None, :] >= lengths[:, None]
    x = x.masked_fill(pad[:, :, None], 0.0) * mask
    mask = mask.masked_fill(pad[:, :, None], 0.0)
    static_num = torch.randn(n, 2, generator=g)
    static_cat = torch.stack([torch.randint(0, 2, (n,)), torch.randint(0, 4, (n,))], 1)
    return x, mask, lengths, static_num, static_cat


@pytest.mark.parametrize("bidirectional", [False, True])
def test_output_shapes_and_attention_is_a_distribution_over_valid_weeks(
    bidirectional: bool, make_model_config: Callable[..., ModelConfig]
) -> None:
    torch.manual_seed(0)
    model = EduPulseModel(make_model_config(bidirectional=bidirectional, gru_layers=2)).eval()
    inputs = _inputs(7, 9)
    logits, weights = model.forward_with_attention(*inputs)
    assert logits.shape == (7,)
    assert weights.shape == (7, 9)
    torch.testing.assert_close(weights.sum(1), torch.ones(7))
    pad = torch.arange(9)[None, :] >= inputs[2][:, None]
    assert (weights[pad] == 0).all()
    torch.testing.assert_close(model(*inputs), logits)


@pytest.mark.parametrize(
    "overrides", [{}, {"bidirectional": True, "gru_layers": 2}, {"linear_skip": True}]
)
def test_padding_and_batch_neighbours_never_change_a_score(
    overrides: dict[str, object], make_model_config: Callable[..., ModelConfig]
) -> None:
    torch.manual_seed(0)
    model = EduPulseModel(make_model_config(**overrides)).eval()
    x, mask, lengths, static_num, static_cat = _inputs(6, 8)
    with torch.no_grad():
        alone = [
            model.calibrated_proba(
                model(
                    x[i : i + 1, : lengths[i]],
                    mask[i : i + 1, : lengths[i]],
                    lengths[i : i + 1],
                    static_num[i : i + 1],
                    static_cat[i : i + 1],
                )
            ).item()
            for i in range(6)
        ]
        # Extra padding full of garbage, and different neighbours in the batch.
        garbage = torch.full((6, 5, 5), 1e3)
        x_pad = torch.cat([x, garbage], 1)
        m_pad = torch.cat([mask, torch.ones(6, 5, 5)], 1)
        batched = model.calibrated_proba(model(x_pad, m_pad, lengths, static_num, static_cat))
    np.testing.assert_allclose(batched.numpy(), np.array(alone), atol=1e-5)


def test_unknown_categories_and_empty_histories_still_score(
    make_model_config: Callable[..., ModelConfig],
) -> None:
    model = EduPulseModel(make_model_config()).eval()
    x, mask, _, static_num, _ = _inputs(2, 4)
    logits = model(x, mask, torch.tensor([0, 4]), static_num, torch.tensor([[-1, 9], [5, 0]]))
    assert torch.isfinite(logits).all()


def test_config_round_trips_and_validates_heads(
    make_model_config: Callable[..., ModelConfig],
) -> None:
    cfg = make_model_config(bidirectional=True)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        ModelConfig(n_seq_features=3, hidden_size=10, attention_heads=3)


def test_the_wide_path_adds_a_linear_term_and_old_configs_have_none(
    make_model_config: Callable[..., ModelConfig],
) -> None:
    torch.manual_seed(0)
    assert EduPulseModel(make_model_config()).wide is None
    model = EduPulseModel(make_model_config(linear_skip=True)).eval()
    assert model.wide is not None
    x, mask, lengths, static_num, static_cat = _inputs(4, 6)
    with torch.no_grad():
        model.wide.weight.zero_()
        model.wide.bias.zero_()
        deep_only = model(x, mask, lengths, static_num, static_cat)
        model.wide.bias.fill_(0.5)
        shifted = model(x, mask, lengths, static_num, static_cat)
        pad = torch.arange(6)[None, :] >= lengths[:, None]
        wide_in = model._wide_inputs(x, mask, lengths, pad, static_num)
    torch.testing.assert_close(shifted, deep_only + 0.5)
    rows = torch.arange(4)
    # [last valid week's values | its mask | mean over observed weeks | statics]
    torch.testing.assert_close(wide_in[:, :5], x[rows, lengths - 1] * mask[rows, lengths - 1])
    torch.testing.assert_close(wide_in[:, 5:10], mask[rows, lengths - 1])
    torch.testing.assert_close(wide_in[:, 15:], static_num)


@pytest.mark.parametrize("overrides", [{}, {"bidirectional": True, "gru_layers": 2}])
def test_full_length_batches_skip_packing_with_the_same_scores_and_gradients(
    overrides: dict[str, object], make_model_config: Callable[..., ModelConfig]
) -> None:
    # Batch scoring gives every student the same length and takes the unpacked path;
    # one padded week more forces the packed path over the same valid weeks.
    torch.manual_seed(0)
    model = EduPulseModel(make_model_config(**overrides)).eval()
    x, mask, _, static_num, static_cat = _inputs(5, 7)
    mask = torch.ones_like(mask)
    lengths = torch.full((5,), 7)

    def logits_and_grad(padded: bool) -> tuple[torch.Tensor, torch.Tensor]:
        leaf = x.clone().requires_grad_(True)
        xs, ms = leaf, mask
        if padded:
            xs = torch.cat([leaf, torch.full((5, 1, 5), 1e3)], 1)
            ms = torch.cat([mask, torch.ones(5, 1, 5)], 1)
        logits = model(xs, ms, lengths, static_num, static_cat)
        (grad,) = torch.autograd.grad(logits.sum(), leaf)
        return logits.detach(), grad

    full_logits, full_grad = logits_and_grad(padded=False)
    packed_logits, packed_grad = logits_and_grad(padded=True)
    torch.testing.assert_close(full_logits, packed_logits)
    torch.testing.assert_close(full_grad, packed_grad)

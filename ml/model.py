from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ml.config import ModelConfig
from ml.data import NormalizedArrays, SequenceDataset


class EduPulseModel(nn.Module):
    """GRU over weeks -> self-attention -> attention pooling + last state -> fusion with statics.

    Padding never reaches the output: the GRU runs on packed sequences, attention
    masks padded keys, and pooling weights are exactly 0 after ``lengths``.
    """

    temperature: torch.Tensor
    logit_bias: torch.Tensor
    cat_limits: torch.Tensor

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        d = config.state_size
        self.gru = nn.GRU(
            input_size=2 * config.n_seq_features,  # values + observation mask
            hidden_size=config.hidden_size,
            num_layers=config.gru_layers,
            batch_first=True,
            dropout=config.dropout if config.gru_layers > 1 else 0.0,
            bidirectional=config.bidirectional,
        )
        self.self_attn = nn.MultiheadAttention(
            d, config.attention_heads, dropout=config.dropout, batch_first=True
        )
        self.attn_norm = nn.LayerNorm(d)
        self.pool_key = nn.Linear(d, d)
        self.pool_query = nn.Parameter(torch.randn(d) / math.sqrt(d))
        # One extra row per table: index == cardinality is "unknown / unseen".
        self.embeddings = nn.ModuleList(
            nn.Embedding(c + 1, config.static_embed_dim) for c in config.static_cat_cardinalities
        )
        self.register_buffer(
            "cat_limits", torch.tensor(config.static_cat_cardinalities, dtype=torch.long)
        )
        fusion_in = 2 * d + config.static_embed_dim * len(config.static_cat_cardinalities)
        fusion_in += config.n_static_numeric
        self.fusion = nn.Sequential(
            nn.Linear(fusion_in, config.fusion_hidden),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.fusion_hidden, 1),
        )
        # Wide path: [last valid week's values and mask, mean of observed values over
        # valid weeks, static numerics] -> one linear logit term.
        self.wide: nn.Linear | None = None
        if config.linear_skip:
            self.wide = nn.Linear(3 * config.n_seq_features + config.n_static_numeric, 1)
        # Fitted on validation data after training; forward() stays uncalibrated so
        # that training, EWC and attributions all work on raw logits.
        # Platt-style: p = sigmoid(logit / temperature + logit_bias). The bias undoes
        # the prior shift that pos_weight introduces, which a temperature cannot.
        self.register_buffer("temperature", torch.ones(()))
        self.register_buffer("logit_bias", torch.zeros(()))

    def forward(
        self,
        x: torch.Tensor,
        obs_mask: torch.Tensor,
        lengths: torch.Tensor,
        static_num: torch.Tensor,
        static_cat: torch.Tensor,
    ) -> torch.Tensor:
        return self.forward_with_attention(x, obs_mask, lengths, static_num, static_cat)[0]

    def forward_with_attention(
        self,
        x: torch.Tensor,
        obs_mask: torch.Tensor,
        lengths: torch.Tensor,
        static_num: torch.Tensor,
        static_cat: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (logits [B], pooling weights over weeks [B, T]; 0 on padding)."""
        batch, t_max, _ = x.shape
        # A student with no recorded week is scored from one all-missing week.
        lengths_cpu = lengths.detach().to("cpu", torch.long).clamp(min=1, max=t_max)
        inp = torch.cat([x, obs_mask.to(x.dtype)], dim=-1)
        full = bool((lengths_cpu == t_max).all())
        if full:
            # Every sequence is full (batch scoring: all students from the year's first
            # week): the same numbers without packing, and several times cheaper to
            # differentiate on CPU, where a packed GRU's backward zero-fills the whole
            # input once per week (explanations' cost grew with the square of weeks).
            states, h_n = self.gru(inp)
        else:
            packed = pack_padded_sequence(inp, lengths_cpu, batch_first=True, enforce_sorted=False)
            out_packed, h_n = self.gru(packed)
            states, _ = pad_packed_sequence(out_packed, batch_first=True, total_length=t_max)
        if self.config.bidirectional:
            last = torch.cat([h_n[-2], h_n[-1]], dim=-1)
        else:
            last = h_n[-1]

        pad = torch.arange(t_max, device=x.device)[None, :] >= lengths_cpu.to(x.device)[:, None]
        # Without padding there is nothing to mask: CPU's masked softmax costs as much
        # as the rest of the attention (the same weights up to float rounding).
        attn_out, _ = self.self_attn(
            states, states, states, key_padding_mask=None if full else pad, need_weights=False
        )
        # Zeroing padded rows guards the pooling sum against anything (even NaN) a
        # fused attention kernel may leave there.
        z = self.attn_norm(states + attn_out).masked_fill(pad[:, :, None], 0.0)
        scores = (self.pool_key(z) @ self.pool_query) / math.sqrt(z.shape[-1])
        scores = scores.float().masked_fill(pad, float("-inf"))
        weights = torch.softmax(scores, dim=1)
        pooled = torch.einsum("bt,btd->bd", weights.to(z.dtype), z)

        parts = [pooled, last.to(pooled.dtype)]
        if len(self.embeddings):
            cats = static_cat.long()
            unknown = (cats < 0) | (cats >= self.cat_limits)
            cats = torch.where(unknown, self.cat_limits.expand_as(cats), cats)
            parts.extend(emb(cats[:, i]) for i, emb in enumerate(self.embeddings))
        if self.config.n_static_numeric:
            parts.append(static_num.to(pooled.dtype))
        logits = self.fusion(torch.cat(parts, dim=-1)).squeeze(-1)
        if self.wide is not None:
            logits = logits + self.wide(
                self._wide_inputs(x, obs_mask, lengths_cpu, pad, static_num)
            ).squeeze(-1).to(logits.dtype)
        return logits, weights

    def _wide_inputs(
        self,
        x: torch.Tensor,
        obs_mask: torch.Tensor,
        lengths: torch.Tensor,
        pad: torch.Tensor,
        static_num: torch.Tensor,
    ) -> torch.Tensor:
        # Only valid weeks contribute, so padding cannot change the wide term either.
        valid = (~pad)[:, :, None].to(x.dtype)
        mask = obs_mask.to(x.dtype) * valid
        last_idx = (lengths.to(x.device) - 1).clamp(min=0)
        rows = torch.arange(x.shape[0], device=x.device)
        last_x = x[rows, last_idx] * mask[rows, last_idx]
        last_mask = mask[rows, last_idx]
        mean_x = (x * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        parts = [last_x, last_mask, mean_x]
        if self.config.n_static_numeric:
            parts.append(static_num.to(x.dtype))
        return torch.cat(parts, dim=-1)

    def calibrated_proba(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits.float() / self.temperature + self.logit_bias)

    def set_calibration(self, temperature: float, logit_bias: float) -> None:
        self.temperature.fill_(float(temperature))
        self.logit_bias.fill_(float(logit_bias))


@torch.no_grad()
def batched_forward(
    model: EduPulseModel,
    data: NormalizedArrays,
    batch_size: int = 2048,
    device: torch.device | None = None,
    with_attention: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Raw logits [N] (and pooling weights [N, T]) in the input order, in eval mode."""
    was_training = model.training
    model.eval()
    device = device or next(iter(model.buffers())).device
    n, t = data.x.shape[:2]
    logits = np.empty(n, dtype=np.float32)
    attention = np.zeros((n, t), dtype=np.float32) if with_attention else None
    # Sorting by length makes each batch only as long as its longest student,
    # which roughly halves scoring time when lengths vary.
    order = np.argsort(data.lengths, kind="stable")
    dataset = SequenceDataset(data)
    try:
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            batch = dataset[idx.tolist()].to(device)
            out, weights = model.forward_with_attention(*batch.model_inputs())
            logits[idx] = out.float().cpu().numpy()
            if attention is not None:
                attention[idx, : weights.shape[1]] = weights.float().cpu().numpy()
    finally:
        model.train(was_training)
    return logits, attention

"""DistributedDataParallel plumbing and the ``torchrun`` entry point.

    torchrun --nproc_per_node=2 -m ml.distributed --data train.npz --out model.pt

Every rank loads the same .npz and computes the same normaliser and split; the
DistributedSampler then gives each rank its own shard of every epoch.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from ml.device import select_device


@dataclass
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    initialised_here: bool


def setup(preferred_device: str | None = "auto") -> DistInfo:
    """Join the torchrun process group when WORLD_SIZE > 1; otherwise a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1 and not dist.is_initialized():
        return DistInfo(0, 1, 0, select_device(preferred_device), False)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = select_device(preferred_device)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    initialised_here = False
    if not dist.is_initialized():
        # gloo on CPU; nccl needs one GPU per rank.
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        initialised_here = True
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, device, initialised_here)


def teardown(info: DistInfo) -> None:
    if info.initialised_here and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def broadcast_float(value: float, info: DistInfo) -> float:
    if info.world_size <= 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=info.device)
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ml.distributed", description=__doc__)
    parser.add_argument("--data", required=True, help=".npz written by SequenceArrays.save_npz")
    parser.add_argument("--val-data", help="separate validation .npz (default: split --data)")
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--out", required=True, help="checkpoint path (written by rank 0)")
    parser.add_argument("--feature-version", default="synthetic-1")
    parser.add_argument("--feature-columns", help="comma-separated weekly feature names")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--grad-accum-steps", type=int, default=1)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--attention-heads", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-amp", action="store_true")
    parser.add_argument("--rank-weights-dir", help="also save every rank's state_dict here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    # Imported here: ml.train imports this module for setup()/teardown().
    from ml.config import ModelConfig, TrainConfig
    from ml.data import SequenceArrays, split_arrays
    from ml.train import train_model

    args = _parse(argv)
    arrays = SequenceArrays.load_npz(args.data)
    if args.val_data:
        train_arrays, val_arrays = arrays, SequenceArrays.load_npz(args.val_data)
    else:
        train_arrays, val_arrays = split_arrays(arrays, args.val_fraction, seed=args.seed)
    cards = tuple(int(c) + 1 for c in arrays.static_cat.max(axis=0)) if len(arrays) else ()
    model_config = ModelConfig(
        n_seq_features=arrays.n_features,
        n_static_numeric=arrays.static_num.shape[1],
        static_cat_cardinalities=cards,
        hidden_size=args.hidden_size,
        attention_heads=args.attention_heads,
    )
    train_config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        grad_accum_steps=args.grad_accum_steps,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        amp=not args.no_amp,
    )
    rank = int(os.environ.get("RANK", "0"))

    def report(record: dict[str, object]) -> None:
        print(json.dumps(record), flush=True)

    result = train_model(model_config, train_config, train_arrays, val_arrays, report)
    if args.rank_weights_dir:
        Path(args.rank_weights_dir).mkdir(parents=True, exist_ok=True)
        state = {k: v.cpu() for k, v in result.model.state_dict().items()}
        torch.save(state, Path(args.rank_weights_dir) / f"rank{rank}.pt")
    if rank == 0:
        columns = (
            args.feature_columns.split(",")
            if args.feature_columns
            else [f"f{i}" for i in range(arrays.n_features)]
        )
        result.save(args.out, feature_version=args.feature_version, feature_columns=columns)
        print(json.dumps({"saved": str(args.out), "val_pr_auc": result.val_metrics["pr_auc"]}))


if __name__ == "__main__":
    main()

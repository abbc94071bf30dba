from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from ml.checkpoint import load_checkpoint
from ml.synthetic import make_synthetic

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(not dist.is_gloo_available(), reason="this torch build has no gloo backend")
def test_torchrun_with_two_cpu_processes_ends_with_identical_weights(tmp_path: Path) -> None:
    make_synthetic(240, 8, 4, seed=5).save_npz(tmp_path / "data.npz")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "GLOO_SOCKET_IFNAME": os.environ.get("GLOO_SOCKET_IFNAME", "lo"),
    }
    cmd = [
        sys.executable, "-m", "torch.distributed.run",
        "--nnodes=1", "--nproc_per_node=2",
        "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
        "-m", "ml.distributed",
        "--data", str(tmp_path / "data.npz"),
        "--out", str(tmp_path / "model.pt"),
        "--epochs", "2", "--batch-size", "32", "--grad-accum-steps", "2",
        "--hidden-size", "8", "--attention-heads", "2",
        "--device", "cpu", "--feature-version", "ddp-test",
        "--rank-weights-dir", str(tmp_path / "ranks"),
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rank0 = torch.load(tmp_path / "ranks" / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "ranks" / "rank1.pt", weights_only=True)
    assert rank0.keys() == rank1.keys()
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
    loaded = load_checkpoint(tmp_path / "model.pt", expected_feature_version="ddp-test")
    assert loaded.extra["world_size"] == 2
    assert loaded.extra["history"] and loaded.model_config.hidden_size == 8

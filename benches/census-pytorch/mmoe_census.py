#!/usr/bin/env python3
"""PyTorch MMoE baseline on Census-Income (KDD), trained on mtl's exact data split.

What this is
------------
A plain-PyTorch multi-gate mixture-of-experts (Ma et al., KDD 2018) whose module
structure mirrors torch-rechub's MMOE
(https://github.com/datawhalechina/torch-rechub, torch_rechub/models/multi_task/mmoe.py):
one embedding table per sparse feature, a ModuleList of expert MLPs, one softmax
gate per task over the experts, the gate-weighted sum of expert outputs fed to a
tower per task.

The layer details and the training recipe are NOT torch-rechub's defaults but the
ones mtl's `examples/census_income.rs` MMoE uses (which follow Merlin Models /
Keras), so that the two figures compare like with like:

  * embeddings: one table per categorical column, cardinality = intDomain.max + 1,
    dim = roundup8(ceil(2 * cardinality ** 0.25)) (Merlin's inferred dim),
    initialised U(-0.05, 0.05) (Keras "uniform");
  * input: embeddings and continuous values concatenated, columns in alphabetical
    order of name;
  * 8 experts, each Linear(IN, 32) + ReLU (torch-rechub's MLP would add
    BatchNorm1d + Dropout; mtl's model has neither);
  * a gate per task: Linear(IN, 8, bias=False) + softmax over experts (torch-rechub's
    gate is an MLP with a bias and BatchNorm1d before the softmax);
  * a tower per task Linear(32, 16) + ReLU, then a head Linear(16, 1) giving a logit;
  * dense weights Xavier/Glorot uniform, biases zero (Keras defaults; PyTorch's
    default init would differ);
  * loss = sum over the two tasks of the mean binary cross-entropy with logits
    (loss weights 1 and 1, no sample weights: `instance_weight` is ignored);
  * Adam(lr 1e-3, betas (0.9, 0.999), eps 1e-7) over all parameters, batch 512,
    reshuffled every epoch, at most 15 epochs, early stopping on the validation
    loss with patience 2, best epoch's weights restored before the test.

Data: the parquet files written by `cargo run --release --example census_income`
(DATA/{train,valid,test}/part_0.parquet and DATA/train/schema.json, Merlin schema
JSON). Inputs are the columns tagged `categorical` or `continuous` and not tagged
`target`; targets are `income` and `marital`.

Prints one line per seed, a markdown table row (mean ± std over seeds) and, last,
one JSON line with every per-seed value.
"""
import argparse
import json
import math
import os
import platform
import time

import numpy as np
import pyarrow.parquet as pq
import torch
import torch.nn as nn
import torch.nn.functional as F

TASKS = ("income", "marital")


# ----------------------------------------------------------------------------- data

def read_schema(path):
    """(categorical [(name, cardinality)], continuous [name]), alphabetical by name."""
    with open(path) as f:
        schema = json.load(f)
    categorical, continuous = [], []
    for feat in schema["feature"]:
        tags = set(feat.get("annotation", {}).get("tag", []))
        if "target" in tags:
            continue  # income, marital: labels, not inputs
        if "categorical" in tags:
            # ids run 0..=max (0: Categorify's null/OOV slot), so the table has max + 1 rows.
            categorical.append((feat["name"], int(feat["intDomain"]["max"]) + 1))
        elif "continuous" in tags:
            continuous.append(feat["name"])
        # anything else (e.g. instance_weight, tagged nothing) is not an input
    categorical.sort()
    continuous.sort()
    return categorical, continuous


def load_split(path, categorical, continuous):
    """Whole split as tensors: ids [N, n_cat] int64, floats [N, n_cont], labels [N, 2]."""
    table = pq.read_table(path)
    ids = np.stack([table.column(n).to_numpy().astype(np.int64) for n, _ in categorical], axis=1)
    dense = np.stack([table.column(n).to_numpy().astype(np.float32) for n in continuous], axis=1)
    labels = np.stack([table.column(t).to_numpy().astype(np.float32) for t in TASKS], axis=1)
    return torch.from_numpy(ids), torch.from_numpy(dense), torch.from_numpy(labels)


def merlin_embedding_dim(cardinality):
    """Merlin's inferred embedding dim: ceil(2 * c^0.25) rounded up to a multiple of 8."""
    return 8 * math.ceil(math.ceil(2.0 * cardinality ** 0.25) / 8)


# ---------------------------------------------------------------------------- model

class MMoE(nn.Module):
    """torch-rechub-shaped MMoE with mtl's (Merlin/Keras) layer choices, see module doc."""

    def __init__(self, categorical, continuous, n_expert=8, expert_dim=32, tower_dim=16,
                 n_task=len(TASKS)):
        super().__init__()
        # The input columns in alphabetical order; embeddings and continuous values are
        # interleaved in that order when concatenated (see forward).
        self.order = sorted([(n, "cat", i) for i, (n, _) in enumerate(categorical)]
                            + [(n, "cont", i) for i, n in enumerate(continuous)])
        self.embeddings = nn.ModuleList(
            nn.Embedding(card, merlin_embedding_dim(card)) for _, card in categorical)
        in_dim = sum(e.embedding_dim for e in self.embeddings) + len(continuous)
        self.in_dim = in_dim
        self.experts = nn.ModuleList(
            nn.Sequential(nn.Linear(in_dim, expert_dim), nn.ReLU()) for _ in range(n_expert))
        self.gates = nn.ModuleList(nn.Linear(in_dim, n_expert, bias=False) for _ in range(n_task))
        self.towers = nn.ModuleList(
            nn.Sequential(nn.Linear(expert_dim, tower_dim), nn.ReLU()) for _ in range(n_task))
        self.heads = nn.ModuleList(nn.Linear(tower_dim, 1) for _ in range(n_task))
        self.reset_parameters()

    def reset_parameters(self):
        # Keras defaults, as in Merlin and mtl: "uniform" embeddings, Glorot-uniform kernels,
        # zero biases.
        for emb in self.embeddings:
            nn.init.uniform_(emb.weight, -0.05, 0.05)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, ids, dense):
        parts = []
        for _, kind, i in self.order:
            if kind == "cat":
                parts.append(self.embeddings[i](ids[:, i]))
            else:
                parts.append(dense[:, i:i + 1])
        x = torch.cat(parts, dim=1)                                       # [B, IN]
        expert_outs = torch.stack([e(x) for e in self.experts], dim=1)    # [B, K, 32]
        logits = []
        for gate, tower, head in zip(self.gates, self.towers, self.heads):
            g = torch.softmax(gate(x), dim=1).unsqueeze(-1)               # [B, K, 1]
            mixed = (g * expert_outs).sum(dim=1)                          # [B, 32]
            logits.append(head(tower(mixed)))                             # [B, 1]
        return torch.cat(logits, dim=1)                                   # [B, n_task]


def total_loss(logits, labels):
    """Sum over tasks of the mean BCE-with-logits (loss weights 1, 1)."""
    return F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(0).sum()


# ---------------------------------------------------------------------------- metrics

def auc(labels, scores):
    """ROC AUC via the Mann-Whitney U statistic; tied scores get average ranks (count 1/2)."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    # average rank (1-based) of every run of equal scores
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(scores)]))
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    n_pos = labels.sum()
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


@torch.no_grad()
def evaluate(model, split, batch_size):
    """(mean total loss over all rows, [AUC per task])."""
    model.eval()
    ids, dense, labels = split
    logits = torch.cat([model(ids[s:s + batch_size], dense[s:s + batch_size])
                        for s in range(0, len(ids), batch_size)])
    model.train()
    # per-row mean over the whole split (not a mean of batch means)
    loss = F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(0).sum()
    aucs = [auc(labels[:, t].numpy(), logits[:, t].numpy()) for t in range(len(TASKS))]
    return float(loss), aucs


# --------------------------------------------------------------------------- training

def train_one(seed, data, categorical, continuous, args):
    started = time.perf_counter()
    torch.manual_seed(seed)
    np.random.seed(seed)
    rng = np.random.default_rng(seed)  # the batch order

    model = MMoE(categorical, continuous)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    train, valid, test = data
    ids, dense, labels = train
    n = len(ids)

    best_loss, best_state, best_epoch, wait = float("inf"), None, 0, 0
    epochs_run = 0
    for epoch in range(args.epochs):
        perm = torch.from_numpy(rng.permutation(n))
        for s in range(0, n, args.batch_size):  # the last, partial batch is kept
            idx = perm[s:s + args.batch_size]
            loss = total_loss(model(ids[idx], dense[idx]), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        epochs_run = epoch + 1
        val_loss, val_aucs = evaluate(model, valid, args.eval_batch_size)
        if args.verbose:
            print(f"  seed {seed} epoch {epochs_run}: val loss {val_loss:.5f}, "
                  f"val AUC {val_aucs[0]:.4f} / {val_aucs[1]:.4f}", flush=True)
        # Keras EarlyStopping(monitor="val_loss", patience, min_delta=0,
        # restore_best_weights=True): strict improvement resets the counter.
        if val_loss < best_loss:
            best_loss, best_epoch, wait = val_loss, epochs_run, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            wait += 1
            if wait >= args.patience:
                break
    model.load_state_dict(best_state)
    _, test_aucs = evaluate(model, test, args.eval_batch_size)
    seconds = time.perf_counter() - started
    return {"seed": seed, "income_auc": test_aucs[0], "marital_auc": test_aucs[1],
            "epochs": epochs_run, "best_epoch": best_epoch, "best_val_loss": best_loss,
            "seconds": seconds}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_data = os.path.normpath(os.path.join(here, "..", "..", "data-out", "census-income"))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=default_data,
                   help="folder with {train,valid,test}/part_0.parquet and train/schema.json")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--patience", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--eval-batch-size", type=int, default=4096,
                   help="batch size of validation/test inference (does not change results)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--verbose", action="store_true", help="print the validation loss per epoch")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    categorical, continuous = read_schema(os.path.join(args.data, "train", "schema.json"))
    data = [load_split(os.path.join(args.data, s, "part_0.parquet"), categorical, continuous)
            for s in ("train", "valid", "test")]

    probe = MMoE(categorical, continuous)
    print(f"torch {torch.__version__}, numpy {np.__version__}, python {platform.python_version()}, "
          f"{args.threads} threads")
    print(f"rows: train {len(data[0][0])}, valid {len(data[1][0])}, test {len(data[2][0])}")
    print(f"{len(categorical)} categorical (name:cardinality/dim), {len(continuous)} continuous; "
          f"input width {probe.in_dim}; {sum(p.numel() for p in probe.parameters())} parameters")
    print("inputs (alphabetical): " + ", ".join(
        f"{n}:{dict(categorical)[n]}/{merlin_embedding_dim(dict(categorical)[n])}" if k == "cat"
        else f"{n}:float" for n, k, _ in probe.order))
    del probe

    runs = []
    for seed in range(args.seeds):
        r = train_one(seed, data, categorical, continuous, args)
        runs.append(r)
        print(f"mmoe seed {seed}: income AUC {r['income_auc']:.4f}, marital AUC "
              f"{r['marital_auc']:.4f} ({r['epochs']} epochs, best {r['best_epoch']}, "
              f"{r['seconds']:.1f} s)", flush=True)

    col = lambda k: np.array([r[k] for r in runs], dtype=np.float64)
    inc, mar, ep, sec = col("income_auc"), col("marital_auc"), col("epochs"), col("seconds")
    print(f"\nCensus-Income MMoE, test AUC over {args.seeds} seeds (mean ± population std)")
    print("| model | income AUC | marital AUC | epochs (mean) | seconds per run |")
    print("|---|---|---|---|---|")
    print(f"| PyTorch (torch-rechub-style MMoE) | {inc.mean():.4f} ± {inc.std():.4f} | "
          f"{mar.mean():.4f} ± {mar.std():.4f} | {ep.mean():.1f} | {sec.mean():.1f} |")
    if args.seeds > 1:
        print(f"(sample std, ddof=1: income ± {inc.std(ddof=1):.4f}, marital ± {mar.std(ddof=1):.4f})")
    print(json.dumps({
        "model": "pytorch-mmoe", "torch": torch.__version__, "threads": args.threads,
        "epochs_max": args.epochs, "patience": args.patience, "batch_size": args.batch_size,
        "income_auc_mean": inc.mean(), "income_auc_std": inc.std(),
        "marital_auc_mean": mar.mean(), "marital_auc_std": mar.std(),
        "epochs_mean": ep.mean(), "seconds_mean": sec.mean(), "runs": runs}))


if __name__ == "__main__":
    main()

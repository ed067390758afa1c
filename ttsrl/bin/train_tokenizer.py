"""Train the supervised speech tokenizer (FSQ tokens + CTC text head + mel head) on dumped log-mels.

Reads the log-mels of ``ttsrl.bin.compute_feats`` (``<feats_dir>/feats.scp``,
``utt2num_frames``, ``mel_conf.yaml``), the transcripts of the data directories and the
global stats (one ``stats.npz`` or the shards of a JOB split, merged here). Writes a
self-contained tokenizer directory::

    <exp_dir>/model.pt  config.yaml  tokens.txt  stats.npz  metrics.json  train.log  tensorboard/  checkpoints/

``metrics.json`` holds the dev-set numbers of the best model: ``ctc_cer_<valid set>``
(percent, greedy CTC transcription of the quantized tokens against the normalized text),
``codebook_perplexity`` (exp of the entropy of code usage) and ``codebook_usage`` (share
of the codes used). Training resumes from ``<exp_dir>/checkpoints`` by itself.

Usage:
    python -m ttsrl.bin.train_tokenizer --config conf/tokenizer/small.yaml \\
        --train_data_dir data/train --train_feats_dir dump/feats/train \\
        --valid_data_dir data/dev --valid_feats_dir dump/feats/dev \\
        --stats_files dump/feats/train/split4/*/stats.npz --exp_dir exp/tokenizer --ngpu 0
    # override any option of the YAML file:
    python -m ttsrl.bin.train_tokenizer --config conf/tokenizer/tiny.yaml --max_steps 3 \\
        --model_conf d_model=64 ...
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import shutil
import time

from ttsrl.train.config import NestedDictAction, add_config_args, add_dataclass_args, str2bool

logger = logging.getLogger("ttsrl.bin.train_tokenizer")


def get_parser() -> argparse.ArgumentParser:
    from ttsrl.train.trainer import TrainerConfig

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p)
    g = p.add_argument_group("data")
    g.add_argument("--train_data_dir", required=True, help="data dir whose text gives the CTC targets")
    g.add_argument("--train_feats_dir", required=True, help="dumped features: feats.scp, utt2num_frames, mel_conf.yaml")
    g.add_argument("--valid_data_dir", required=True)
    g.add_argument("--valid_feats_dir", required=True)
    g.add_argument(
        "--stats_files", nargs="+", default=None,
        help="global stats of the train feats (several: shards, merged); default <train_feats_dir>/stats.npz",
    )
    g.add_argument("--token_type", default="char", choices=["char", "phn", "bpe"], help="CTC target units")
    g.add_argument("--token_list", default=None, help="CTC token list (default: built from the train text)")
    g.add_argument("--bpemodel", default=None, help="bpe: an existing sentencepiece model (default: trained here)")
    g.add_argument("--bpe_vocab_size", type=int, default=300, help="bpe: vocabulary of the model trained here")
    g.add_argument("--exp_dir", required=True, help="output directory of the tokenizer")
    g = p.add_argument_group("model")
    g.add_argument("--model", default="fsq_ctc", help="registered speech tokenizer")
    g.add_argument("--model_conf", action=NestedDictAction, default={}, help="SpeechTokenizerConfig fields")
    g = p.add_argument_group("batching and device")
    g.add_argument("--max_frames", type=int, default=20000, help="padded mel frames per training batch")
    g.add_argument("--valid_max_frames", type=int, default=40000, help="padded mel frames per validation batch")
    g.add_argument("--ngpu", type=int, default=0, help="0: CPU; 1: a GPU (more: launch with torchrun)")
    g.add_argument("--num_threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    g.add_argument("--write_metrics", type=str2bool, default=True, help="evaluate the best model on the valid set")
    add_dataclass_args(p, TrainerConfig, group="trainer")
    return p


def build_datasets(args, tokenizer):
    """Train and valid UttDatasets of ``{feats, text}`` and their frame lengths."""
    from ttsrl.data.datadir import read_kv
    from ttsrl.data.dataset import UttDataset
    from ttsrl.text.tokenizer import encode_texts

    out = []
    for data_dir, feats_dir in ((args.train_data_dir, args.train_feats_dir), (args.valid_data_dir, args.valid_feats_dir)):
        ids, unknown = encode_texts(tokenizer, read_kv(os.path.join(data_dir, "text")))
        for utt, symbols in list(unknown.items())[:20]:
            logger.warning("%s: %s: %s not in the token list (mapped to <unk>)", data_dir, utt, " ".join(symbols))
        ds = UttDataset({"feats": os.path.join(feats_dir, "feats.scp"), "text": ids})
        out.append((ds, ds.lengths("feats", os.path.join(feats_dir, "utt2num_frames"))))
    return out


def check_ctc_lengths(name, ds, frames, config) -> None:
    """Warn about utterances whose CTC target cannot fit their frames (their CTC loss is zeroed)."""
    import numpy as np

    ctc_frames = frames.copy()
    for _ in range(int(np.log2(config.subsample))):
        ctc_frames = (ctc_frames - 1) // 2 + 1
    ctc_frames *= max(config.ctc_upsample, 1)
    bad = 0
    for i, utt in enumerate(ds.utts):
        y = np.asarray(ds.fields["text"][utt])
        need = len(y) + int((y[1:] == y[:-1]).sum())  # a blank between repeated labels
        bad += need > ctc_frames[i]
    if bad:
        logger.warning("%s: %d of %d utterances have more CTC labels than frames", name, bad, len(ds))


def mel_config(args, model_conf):
    """The mel config of the dumped features (which the model must compute in encode_wav too)."""
    from ttsrl.train.config import load_yaml

    confs = []
    for d in (args.train_feats_dir, args.valid_feats_dir):
        path = os.path.join(d, "mel_conf.yaml")
        if os.path.isfile(path):
            confs.append((path, load_yaml(path)))
    if len(confs) == 2 and confs[0][1] != confs[1][1]:
        raise ValueError(f"{confs[0][0]} and {confs[1][0]} differ: train and valid features must match")
    if not confs:
        return model_conf.get("mel", {})
    given = model_conf.get("mel")
    if given and any(confs[0][1].get(k) != v for k, v in given.items()):
        raise ValueError(f"model_conf.mel {given} contradicts the features' {confs[0][0]}")
    return confs[0][1]


def run(args: argparse.Namespace) -> dict:
    import torch

    from ttsrl.data.datadir import read_kv
    from ttsrl.data.dataset import collate_pad
    from ttsrl.feats.stats import merge_stats_files
    from ttsrl.models.speech_tokenizer import (
        SPEECH_TOKENIZERS,
        compute_loss,
        evaluate_tokens,
        model_conf_dict,
    )
    from ttsrl.text.tokenizer import build_token_list, build_tokenizer, train_bpe, write_token_list
    from ttsrl.train import distributed as dist_utils
    from ttsrl.train.config import dataclass_from_args
    from ttsrl.train.sampler import build_loader
    from ttsrl.train.trainer import Trainer, TrainerConfig, move_to_device

    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    dist_utils.init_distributed()
    device = dist_utils.get_device(args.ngpu)
    os.makedirs(args.exp_dir, exist_ok=True)

    # CTC units (token list, BPE model) and global stats, written into the tokenizer dir by rank 0
    texts = read_kv(os.path.join(args.train_data_dir, "text")).values()
    bpemodel = os.path.join(args.exp_dir, "bpe.model") if args.token_type == "bpe" else None
    stats = merge_stats_files(args.stats_files or [os.path.join(args.train_feats_dir, "stats.npz")])
    if dist_utils.is_main():
        if bpemodel and args.bpemodel:
            src = args.bpemodel if args.bpemodel.endswith(".model") else args.bpemodel + ".model"
            shutil.copyfile(src, bpemodel)
        elif bpemodel and not os.path.isfile(bpemodel):  # (a resumed run keeps its units)
            train_bpe(texts, bpemodel, args.bpe_vocab_size)
        tokens = args.token_list or build_token_list(args.token_type, texts, bpemodel=bpemodel)
        write_token_list(os.path.join(args.exp_dir, "tokens.txt"), build_tokenizer(args.token_type, tokens, bpemodel).tokens)
        stats.save(os.path.join(args.exp_dir, "stats.npz"))
    dist_utils.barrier()
    tokenizer = build_tokenizer(args.token_type, os.path.join(args.exp_dir, "tokens.txt"), bpemodel)

    model_conf = dict(args.model_conf)
    model_conf["vocab_size"] = tokenizer.vocab_size
    model_conf["mel"] = mel_config(args, model_conf)
    model = SPEECH_TOKENIZERS.build(args.model, model_conf)
    model.set_stats(os.path.join(args.exp_dir, "stats.npz"))
    args.model_conf = model_conf_dict(model.config)
    logger.info("%s: %.2fM parameters, codebook %d, %.1f tokens/s, CTC vocabulary %d",
                args.model, model.num_params() / 1e6, model.codebook_size, model.config.token_rate,
                tokenizer.vocab_size)

    (train_ds, train_len), (valid_ds, valid_len) = build_datasets(args, tokenizer)
    check_ctc_lengths(args.train_data_dir, train_ds, train_len, model.config)
    tconf = dataclass_from_args(TrainerConfig, args)
    train_loader = build_loader(train_ds, train_len, args.max_frames, collate_pad, shuffle=True,
                                seed=tconf.seed, num_workers=tconf.num_workers)
    valid_loader = build_loader(valid_ds, valid_len, args.valid_max_frames, collate_pad, shuffle=False,
                                num_workers=tconf.num_workers)
    resolved = {k: v for k, v in vars(args).items() if k != "config"}
    resolved["token_list"] = os.path.join(args.exp_dir, "tokens.txt")
    start = time.time()
    loss_fn = functools.partial(compute_loss, decode=tokenizer.decode)  # validation CER on characters
    summary = Trainer(model, train_loader, valid_loader, loss_fn, tconf, args.exp_dir,
                      resolved_config=resolved, device=device).train()
    logger.info("training done in %.1f s: %s", time.time() - start, summary)

    if args.write_metrics and dist_utils.is_main():
        best = type(model).from_pretrained(args.exp_dir, device=device)
        valid_name = os.path.basename(os.path.normpath(args.valid_data_dir))

        def batches():
            for batch in valid_loader:
                batch = move_to_device(batch, device)
                toks, lens = best.encode(batch["feats"], batch["feats_lens"])
                refs = [t[:n] for t, n in zip(batch["text"].tolist(), batch["text_lens"].tolist(), strict=True)]
                yield toks, lens, refs

        ev = evaluate_tokens(best, batches(), decode=tokenizer.decode)
        metrics = {
            f"ctc_cer_{valid_name}": round(ev["ctc_cer"], 3),
            "codebook_perplexity": round(ev["codebook_perplexity"], 2),
            "codebook_usage": round(ev["codebook_usage"], 4),
            "codebook_size": best.codebook_size,
            "token_rate": best.config.token_rate,
            "metrics_set": valid_name,
            "num_params": best.num_params(),
            "train_steps": summary["step"],
            "train_seconds": round(time.time() - start, 1),
        }
        write_json(os.path.join(args.exp_dir, "metrics.json"), metrics)
        logger.info("metrics on %s: %s", valid_name, json.dumps(metrics))
        summary["metrics"] = metrics
    dist_utils.barrier()
    dist_utils.cleanup()
    return summary


def write_json(path: str, data: dict) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> dict:
    from ttsrl.data.cli import setup_logging
    from ttsrl.train.config import parse_with_config

    args = parse_with_config(get_parser(), argv)
    setup_logging("INFO")
    try:
        return run(args)
    except (ValueError, OSError) as e:  # bad input: one clear line, non-zero exit
        logging.error("%s", e)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()

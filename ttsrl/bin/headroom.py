#!/usr/bin/env python3
"""How much of the best-of-N headroom every aligned model captures, on a dev set (stage 9).

The base LM samples --best_of candidates per dev text; each aligned model samples --num_candidates.
Every candidate is read by the speech tokenizer's CTC head (a recognizer that is not the judge;
no synthesis: the proxy of ttsrl.bin.eval_samples). Then, in CER %:

  CER_base     the mean over the base candidates (the expected CER of one base sample)
  CER_best     the mean over texts of the CER of the base candidate the reward ranks first: the
               token-level reward (the reward model with --reward_weights, what the pairs of
               dpo, speechalign, raft, coh and the rewards of diffro and grpo come from), or, for
               the --audio_models (grpo_audio), the audio-level reward (synthesis + the tokenizer's
               CTC head on the re-encoded audio, ttsrl.align.audio_reward)
  CER_method   the mean over the model's candidates
  headroom_captured = (CER_base - CER_method) / (CER_base - CER_best)

results.json (--results) gets, under the set's entry (--set_name, default the token dir's name):
base: cer@tokenizer, cer_best_of_n@tokenizer (token reward); every model: cer@tokenizer,
cer_best_of_n@tokenizer (its reward's) and headroom_captured. <out_dir>/headroom.json holds it all.
Samples and rewards are kept in <out_dir>/<tag>/ (tokens.scp, rewards.tsv, rewards_audio.tsv) with a
.done marker naming the model file and settings that made them: a rerun redoes only what changed.

Usage:
    python -m ttsrl.bin.headroom --token_dir dump/tokens/dev --tokenizer_dir exp/tokenizer \\
        --base_lm exp/base/lm/model.pt --models dpo=exp/dpo/lm/model.pt grpo=exp/grpo/lm/model.pt \\
        --reward_model exp/reward --out_dir exp/headroom/dev --results exp/results.json --top_k 50 \\
        [--audio_models grpo_audio --models grpo_audio=exp/grpo_audio/lm/model.pt --data_dir data/dev \\
         --flow exp/base/flow/model.pt]
"""
import argparse

from ttsrl.sample.sampler import SamplingConfig
from ttsrl.utils.config import add_config_args, add_dataclass_args, parse_with_config, str2bool


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p)
    p.add_argument("--token_dir", required=True, help="the dev set's token dir (text, ctc_text, prompts)")
    p.add_argument("--tokenizer_dir", required=True, help="the speech tokenizer: its CTC head reads every candidate")
    p.add_argument("--base_lm", required=True, help="model.pt of the base LM")
    p.add_argument("--models", nargs="+", required=True, help="TAG=model.pt of every aligned LM")
    p.add_argument("--out_dir", required=True, help="samples, rewards and headroom.json")
    p.add_argument("--results", default=None, help="results.json to update (default: none)")
    p.add_argument("--set_name", default=None, help="the set's name in results.json (default: the token dir's name)")
    p.add_argument("--best_of", type=int, default=16, help="base candidates per text (N)")
    p.add_argument("--reward_model", default=None, help="the token-level reward model (ttsrl.bin.train_reward)")
    p.add_argument("--reward_weights", default="{text: 1.0}", help="YAML mapping of the token reward's weights")
    p.add_argument("--audio_models", nargs="*", default=[], help="tags whose best of N is by the audio reward")
    p.add_argument("--data_dir", default=None, help="the set's data dir (text, prompt.scp): the audio reward's")
    p.add_argument("--flow", default=None, help="audio reward: flow-matching model.pt")
    p.add_argument("--vocoder", default="griffin_lim", choices=("griffin_lim", "vocos"))
    p.add_argument("--vocoder_path", default=None, help="audio reward: model.pt of a trained vocos vocoder")
    p.add_argument("--flow_n_steps", type=int, default=10, help="audio reward: ODE steps of the flow model")
    p.add_argument("--reward_asr", default="tokenizer", help="audio reward: 'tokenizer' or a train_asr model.pt")
    p.add_argument("--audio_reward_weights", default="{text: 1.0}", help="YAML mapping of the audio reward's weights")
    p.add_argument("--lm_prompt", type=str2bool, default=True, help="the LMs read the set's zero-shot prompts")
    p.add_argument("--batch_size", type=int, default=8, help="(prompt, text) rows per sampling batch")
    p.add_argument("--ngpu", type=int, default=None, help="0 = CPU; default: CUDA when available")
    p.add_argument("--num_threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    add_dataclass_args(p, SamplingConfig, group="sampling (--num_candidates: of every aligned model)")
    p.set_defaults(num_candidates=4)
    return p


def parse_models(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        tag, sep, path = item.partition("=")
        if not sep or not tag or not path:
            raise ValueError(f"--models: {item!r} is not TAG=model.pt")
        out[tag] = path
    return out


def run(args: argparse.Namespace) -> dict:
    import dataclasses
    import json
    import os

    from ttsrl.align.pairs import read_rewards
    from ttsrl.align.rewards import TokenReward, read_targets, score_samples_dir
    from ttsrl.models.codec_lm import load_codec_lm
    from ttsrl.models.reward import CLASS_HEADS, load_reward_model
    from ttsrl.models.speech_tokenizer import SpeechTokenizer, load_ctc_tokenizer
    from ttsrl.sample.generate import generate_candidates
    from ttsrl.score import headroom as hr
    from ttsrl.score.results import update_results
    from ttsrl.train.distributed import inference_device
    from ttsrl.utils.config import dataclass_from_args, yaml_loads
    from ttsrl.utils.fileio import atomic_write_text

    models = parse_models(args.models)
    unknown = sorted(set(args.audio_models) - set(models))
    if unknown:
        raise ValueError(f"--audio_models {unknown} are not among --models")
    token_models = [t for t in models if t not in args.audio_models]
    if token_models and not args.reward_model:
        raise ValueError(f"--reward_model is needed for the best of N of {token_models}")
    if args.audio_models and not (args.data_dir and args.flow):
        raise ValueError("--audio_models need --data_dir and --flow (the audio reward)")
    if args.best_of < 2:
        raise ValueError(f"--best_of must be at least 2, got {args.best_of}")
    weights, audio_weights = yaml_loads(args.reward_weights), yaml_loads(args.audio_reward_weights)
    if not isinstance(weights, dict) or not isinstance(audio_weights, dict):
        raise ValueError("--reward_weights and --audio_reward_weights must be YAML mappings, e.g. '{text: 1.0}'")
    device = inference_device(args.ngpu, args.num_threads)
    cfg = dataclass_from_args(SamplingConfig, args)
    set_name = args.set_name or os.path.basename(os.path.normpath(args.token_dir))
    tokenizer = SpeechTokenizer.from_pretrained(args.tokenizer_dir, device)
    ctc_tok = load_ctc_tokenizer(args.tokenizer_dir)

    def samples(tag: str, lm: str, n: int) -> str:
        out = os.path.join(args.out_dir, tag)
        c = dataclasses.replace(cfg, num_candidates=n)
        stamp = {"lm": hr.file_stamp(lm), "sampling": dataclasses.asdict(c), "lm_prompt": args.lm_prompt,
                 "token_dir": os.path.abspath(args.token_dir)}
        if not hr.is_done(out, stamp):
            for old in (".done", "rewards.tsv", "rewards_audio.tsv"):  # made from other samples
                if os.path.exists(os.path.join(out, old)):
                    os.remove(os.path.join(out, old))
            generate_candidates(load_codec_lm(lm, device), args.token_dir, out, c, lm_prompt=args.lm_prompt,
                                batch_size=args.batch_size)
            hr.mark_done(out, stamp)
        return out

    base_dir = samples("base", args.base_lm, args.best_of)
    best_by = {}
    if token_models:
        path = os.path.join(base_dir, "rewards.tsv")
        if not os.path.isfile(path):
            rm = load_reward_model(args.reward_model, device)
            scorer = TokenReward(rm, weights)
            targets = read_targets(args.data_dir, None, [h for h in CLASS_HEADS if h in rm.heads])
            score_samples_dir(scorer, base_dir, args.token_dir, path, targets)
        best_by["token"] = read_rewards(path).column("reward")
    if args.audio_models:
        from ttsrl.align.audio_reward import AudioReward
        from ttsrl.sample.synthesize import FlowOptions, TTSPipeline

        path = os.path.join(base_dir, "rewards_audio.tsv")
        if not os.path.isfile(path):
            tts = TTSPipeline.from_dirs(None, args.flow, args.tokenizer_dir, args.vocoder, args.vocoder_path, device)
            scorer = AudioReward(tts, args.data_dir, audio_weights, args.reward_asr,
                                 FlowOptions(n_steps=args.flow_n_steps))
            score_samples_dir(scorer, base_dir, args.token_dir, path)
        best_by["audio"] = read_rewards(path).column("reward")
    base_cers = hr.proxy_cers(base_dir, args.token_dir, tokenizer, ctc_tok)
    best = {r: hr.best_of_n_cer(rw, base_cers) for r, rw in best_by.items()}
    model_cers = {tag: hr.proxy_cers(samples(tag, lm, cfg.num_candidates), args.token_dir, tokenizer, ctc_tok)
                  for tag, lm in models.items()}
    table = hr.headroom_table(base_cers, best, model_cers,
                              {t: "audio" if t in args.audio_models else "token" for t in models})
    table.update(set=set_name, best_of=args.best_of, num_candidates=cfg.num_candidates,
                 utterances=len({k.rsplit("-c", 1)[0] for k in base_cers}))
    os.makedirs(args.out_dir, exist_ok=True)
    atomic_write_text(os.path.join(args.out_dir, "headroom.json"), json.dumps(table, indent=2, sort_keys=True) + "\n")
    if args.results:
        base_row = {"cer@tokenizer": table["cer_base"]}
        if "token" in table["cer_best_of_n"]:
            base_row["cer_best_of_n@tokenizer"] = table["cer_best_of_n"]["token"]
        update_results(args.results, "base", set_name, base_row)
        for tag, row in table["models"].items():
            entry = {"cer@tokenizer": row["cer"]}
            if row["cer_best_of_n"] is not None:
                entry["cer_best_of_n@tokenizer"] = row["cer_best_of_n"]
            if row["headroom_captured"] is not None:
                entry["headroom_captured"] = row["headroom_captured"]
            update_results(args.results, tag, set_name, entry)
    return table


def main(argv=None) -> dict:
    import json
    import logging

    from ttsrl.utils.cli import exit_on_bad_input, setup_logging

    setup_logging("INFO")
    args = parse_with_config(get_parser(), argv)
    table = exit_on_bad_input(lambda: run(args))
    logging.getLogger("ttsrl.bin.headroom").info("%s", json.dumps(table, sort_keys=True))
    return table


if __name__ == "__main__":
    main()

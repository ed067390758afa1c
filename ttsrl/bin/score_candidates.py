#!/usr/bin/env python3
"""Score speech-token candidates with the multi-task reward model (or an audio reward); writes rewards.tsv.

Usage: python -m ttsrl.bin.score_candidates --reward_model exp/reward --samples_dir exp/base/samples/train \\
           --token_dir dump/tokens/train [--weights "{text: 1.0, emotion: 0.5}"] \\
           [--target_data_dir data/train | --targets "{emotion: happy}"] [--out rewards.tsv]
       python -m ttsrl.bin.score_candidates --reward audio --samples_dir exp/base/samples/train \\
           --token_dir dump/tokens/train --data_dir data/train --tokenizer_dir exp/tokenizer \\
           --flow exp/base/flow/model.pt [--weights "{text: 1.0, sim: 1.0}"] [--reward_asr exp/reward_asr/model.pt]
Reads <samples_dir>/tokens.scp (keys <utt>-c<k>; or the job shards tokens.<n>.scp) and the text ids of
<token_dir>/ctc_text (the speech tokenizer's CTC units, whatever the LM's text units are; <token_dir>/text
in a token dir without it); writes <samples_dir>/rewards.tsv: a header "key <components...> reward", one line per
candidate (components: text = CTC log-likelihood per text token, emotion/gender/age = log p(target),
quality = predicted quality; see ttsrl.align.rewards). Targets come from the utt2emo/utt2gender/utt2age
files of --target_data_dir, or one name for all utterances from --targets.
With --reward audio every candidate is synthesized (flow + vocoder, with its utterance's prompt from
--data_dir) and scored by text (log p_CTC(text | audio) per character from a reward ASR that is not the
judge: the tokenizer's CTC head by default), sim, f0v and dnsmos; see ttsrl.align.audio_reward.
"""
import argparse

from ttsrl.sample.synthesize import FlowOptions
from ttsrl.utils.cli import setup_logging
from ttsrl.utils.config import add_dataclass_args, dataclass_from_args, yaml_loads


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reward", default="token", choices=("token", "audio"),
                   help="token: the multi-task reward model on the tokens; audio: synthesize, then score the audio")
    p.add_argument("--reward_model", default=None, help="folder (or model.pt) of ttsrl.bin.train_reward (--reward token)")
    p.add_argument("--samples_dir", required=True, help="output of ttsrl.bin.sample_lm (tokens.scp)")
    p.add_argument("--token_dir", required=True, help="the set's token dir (ctc_text: the CTC-unit text ids)")
    p.add_argument("--out", default=None, help="output file (default: <samples_dir>/rewards.tsv)")
    p.add_argument("--weights", default="{text: 1.0}",
                   help="YAML mapping of component weights; unset ones are 0. token: text, emotion, gender, age, "
                        "quality; audio: text, sim, f0v, dnsmos")
    p.add_argument("--target_data_dir", default=None, help="data dir whose utt2emo/utt2gender/utt2age are the targets")
    p.add_argument("--targets", default=None, help="YAML mapping of one target per head for every utterance")
    p.add_argument("--batch_size", type=int, default=32, help="candidates per batch")
    a = p.add_argument_group("audio reward (--reward audio)")
    a.add_argument("--data_dir", default=None, help="the set's data dir (text, prompt.scp, prompt_text)")
    a.add_argument("--tokenizer_dir", default=None, help="speech tokenizer dir")
    a.add_argument("--flow", default=None, help="flow-matching model.pt")
    a.add_argument("--vocoder", default="griffin_lim", choices=("griffin_lim", "vocos"))
    a.add_argument("--vocoder_path", default=None, help="model.pt of a trained vocos vocoder")
    a.add_argument("--griffin_lim_iters", type=int, default=32)
    a.add_argument("--reward_asr", default="tokenizer",
                   help="'tokenizer' (its CTC head) or a ttsrl.bin.train_asr model.pt that is not the judge")
    add_dataclass_args(p, FlowOptions, group="flow", prefix="flow_")
    p.add_argument("--ngpu", type=int, default=None, help="0 = CPU; default: CUDA when available")
    p.add_argument("--num_threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    return p


def main(argv=None):
    setup_logging("INFO")
    args = get_parser().parse_args(argv)
    import torch

    from ttsrl.align.rewards import TokenReward, read_targets, score_samples_dir
    from ttsrl.models.reward import CLASS_HEADS, load_reward_model
    from ttsrl.train import distributed as du

    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    weights, fixed = yaml_loads(args.weights), yaml_loads(args.targets) if args.targets else {}
    if not isinstance(weights, dict) or not isinstance(fixed, dict):
        raise SystemExit("--weights and --targets must be YAML mappings, e.g. '{text: 1.0, emotion: 0.5}'")
    device = du.get_device(args.ngpu)
    if args.reward == "audio":
        need = [o for o in ("data_dir", "tokenizer_dir", "flow") if not getattr(args, o)]
        if need:
            raise SystemExit(f"--reward audio needs {', '.join('--' + o for o in need)}")
        from ttsrl.align.audio_reward import AudioReward
        from ttsrl.sample.synthesize import TTSPipeline

        tts = TTSPipeline.from_dirs(None, args.flow, args.tokenizer_dir, args.vocoder, args.vocoder_path, device,
                                    griffin_lim_iters=args.griffin_lim_iters)
        scorer = AudioReward(tts, args.data_dir, weights, args.reward_asr,
                             dataclass_from_args(FlowOptions, args, prefix="flow_"))
        return score_samples_dir(scorer, args.samples_dir, args.token_dir, args.out, {}, args.batch_size)
    if not args.reward_model:
        raise SystemExit("--reward token needs --reward_model")
    model = load_reward_model(args.reward_model, device)
    scorer = TokenReward(model, weights)
    heads = [h for h in CLASS_HEADS if h in model.heads]
    targets = read_targets(args.target_data_dir, fixed, heads)
    missing = [h for h in scorer.needs_targets if h not in targets]
    if missing:
        raise SystemExit(f"components {missing} have a weight but no targets: give --target_data_dir or --targets")
    return score_samples_dir(scorer, args.samples_dir, args.token_dir, args.out, targets, args.batch_size)


if __name__ == "__main__":
    main()

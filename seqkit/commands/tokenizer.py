"""``seqkit tokenizer train FILES... --vocab-size N --out DIR``: train a tokenizer on text files.

The folder it writes (``tokenizer.json`` + ``tokenizer_config.json``) is what a recipe's
``tokenizer.path`` loads, and what stock ``transformers.AutoTokenizer.from_pretrained`` loads with
the same ids. The folder is written under a temporary name and renamed when complete, so a failed
run leaves nothing behind; an existing non-empty folder is never overwritten.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from seqkit.checks import MAX_VOCAB, check_optional_range
from seqkit.errors import UserError
from seqkit.outputs import check_creatable


def cmd_tokenizer_train(args: argparse.Namespace) -> int:
    from seqkit.data import read_text_file, train_tokenizer
    from seqkit.data.special_tokens import parse_special_token_args

    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(
            f"--out {out} already exists and is not an empty folder; refusing to overwrite"
        )
    check_creatable(out, "--out")
    if args.kind == "bpe" and args.vocab_size is None:
        raise UserError("--vocab-size is required for a bpe tokenizer")
    check_optional_range("--vocab-size", args.vocab_size, 1, MAX_VOCAB, integer=True)
    special = None if args.special_tokens is None else parse_special_token_args(args.special_tokens)
    # read_text_file checks each file (exists, UTF-8 with the offending byte offset, not empty);
    # files are read lazily, one at a time, so only one is in memory beside the trainer's counts.
    texts = (read_text_file(path) for path in args.files)
    tokenizer = train_tokenizer(
        args.kind, texts, vocab_size=args.vocab_size, special_tokens=special
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tokenizer.save_pretrained(staging)
        if out.exists():
            out.rmdir()  # empty (checked above); os.replace needs the name free
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    roles = ", ".join(f"{r}={t}" for r, t in tokenizer.special_token_roles.items()) or "none"
    print(
        f"wrote a {args.kind} tokenizer with {tokenizer.vocab_size} tokens to {out} "
        f"(special tokens: {len(tokenizer.special_tokens)}; roles: {roles})"
    )
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("tokenizer", help="train tokenizers")
    actions = parser.add_subparsers(dest="tokenizer_command", required=True, metavar="ACTION")
    train = actions.add_parser("train", help="train a bpe or char tokenizer on text files")
    train.add_argument(
        "files", nargs="+", metavar="FILE", help="UTF-8 text files or folders of *.txt"
    )
    train.add_argument("--out", required=True, metavar="DIR", help="folder to write (new or empty)")
    train.add_argument("--kind", choices=("bpe", "char"), default="bpe")
    train.add_argument(
        "--vocab-size",
        type=int,
        help="tokens in the vocabulary (bpe: required; char: an upper limit)",
    )
    train.add_argument(
        "--special-tokens",
        nargs="*",
        metavar="TOKEN",
        help="ROLE=TOKEN (roles: pad bos eos unk mask sep cls) or bare tokens; no values = none "
        "(default: bpe gets <pad> <s> </s> <unk> <mask> <sep> <cls>, char gets none)",
    )
    train.set_defaults(run=cmd_tokenizer_train)

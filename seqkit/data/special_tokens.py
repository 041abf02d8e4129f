"""Special tokens, declared once: the seven roles every tokenizer and collator agrees on.

A *role* (``pad``, ``bos``, ``eos``, ``unk``, ``mask``, ``sep``, ``cls``) is what a collator asks
for; a *token* is the string a vocabulary stores for it (``<pad>``). Tokenizers keep a
``role -> token`` map and expose ``pad_token_id`` and friends through :class:`SpecialTokenIds`,
so a masking collator writes ``tokenizer.mask_token_id`` and never spells ``"<mask>"`` itself.
Saved folders write the same map into ``tokenizer_config.json`` as ``pad_token``, ``bos_token``
..., the keys ``transformers`` reads, so stock ``AutoTokenizer`` agrees on every special id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from seqkit.errors import UserError

SPECIAL_TOKEN_ROLES = ("pad", "bos", "eos", "unk", "mask", "sep", "cls")
"""The roles a special token can play, in the id order of a freshly trained vocabulary."""

DEFAULT_SPECIAL_TOKENS: dict[str, str] = {
    "pad": "<pad>",  # fills batches to one length; labels there are ignored
    "bos": "<s>",  # begins a sequence
    "eos": "</s>",  # ends a sequence (and separates packed documents)
    "unk": "<unk>",  # a character outside a closed vocabulary (byte-level BPE never needs it)
    "mask": "<mask>",  # what a masked-LM collator puts in place of a hidden token
    "sep": "<sep>",  # separates the two segments of a pair
    "cls": "<cls>",  # the whole-sequence summary position of a classifier
}
"""``role -> token`` used when a tokenizer is trained without saying otherwise."""

SpecialTokensSpec = Mapping[str, str] | Sequence[str]
"""How callers name special tokens: ``{role: token}``, or plain tokens (a token equal to a
role's default string takes that role; any other is a special token without a role)."""


def resolve_special_tokens(spec: SpecialTokensSpec | None) -> tuple[list[str], dict[str, str]]:
    """``(tokens in id order, {role: token})`` for a spec; raises UserError on a bad one."""
    if spec is None:
        spec = DEFAULT_SPECIAL_TOKENS
    if isinstance(spec, Mapping):
        roles = dict(spec)
        tokens = list(roles.values())
    else:
        tokens = list(spec)
        by_default = {token: role for role, token in DEFAULT_SPECIAL_TOKENS.items()}
        roles = {by_default[t]: t for t in tokens if t in by_default}
    for role, token in roles.items():
        if role not in SPECIAL_TOKEN_ROLES:
            raise UserError(
                f"unknown special-token role {role!r}; roles: {', '.join(SPECIAL_TOKEN_ROLES)}"
            )
        if not isinstance(token, str) or not token:
            raise UserError(f"the {role} special token must be a non-empty string, got {token!r}")
    for token in tokens:
        if not isinstance(token, str) or not token:
            raise UserError(f"a special token must be a non-empty string, got {token!r}")
    if len(set(tokens)) != len(tokens):
        duplicate = next(t for t in tokens if tokens.count(t) > 1)
        raise UserError(f"special token {duplicate!r} is given twice")
    return tokens, roles


def parse_special_token_args(values: Sequence[str]) -> list[str] | dict[str, str]:
    """Command-line ``--special-tokens`` values: ``ROLE=TOKEN`` or a bare ``TOKEN`` each.

    Bare tokens give a plain list (roles by default names); ``ROLE=TOKEN`` values give a
    ``role -> token`` map. The two forms do not mix.
    """
    if not any("=" in value for value in values):
        return list(values)
    roles: dict[str, str] = {}
    for value in values:
        role, sep, token = value.partition("=")
        if sep and role not in SPECIAL_TOKEN_ROLES:
            raise UserError(
                f"--special-tokens {value!r}: unknown special-token role {role!r}; roles: "
                f"{', '.join(SPECIAL_TOKEN_ROLES)}"
            )
        if not sep:
            raise UserError(
                f"--special-tokens {value!r}: expected ROLE=TOKEN (like the other values) with "
                f"a role in {', '.join(SPECIAL_TOKEN_ROLES)}"
            )
        roles[role] = token
    return roles


def _role_id(role: str) -> property:
    def getter(self: SpecialTokenIds) -> int | None:
        return self.special_token_id(role)

    return property(getter, doc=f"Id of the {role} token, or None if the vocabulary has none.")


class SpecialTokenIds:
    """Mixin: ``pad_token_id`` ... ``cls_token_id`` from a tokenizer's ``role -> token`` map.

    The tokenizer provides ``special_token_roles`` (a dict) and ``token_to_id(token)``.
    """

    special_token_roles: dict[str, str]

    def token_to_id(self, token: str) -> int | None:
        raise NotImplementedError

    def special_token_id(self, role: str) -> int | None:
        """Id of the token playing ``role``, or None."""
        if role not in SPECIAL_TOKEN_ROLES:
            raise ValueError(f"unknown special-token role {role!r}")
        token = self.special_token_roles.get(role)
        return None if token is None else self.token_to_id(token)

    def require_special_token_id(self, role: str, needed_by: str) -> int:
        """Id of ``role``'s token; a UserError naming ``needed_by`` if the vocabulary lacks it."""
        token_id = self.special_token_id(role)
        if token_id is None:
            raise UserError(
                f"{needed_by} needs a {role} token, which this tokenizer does not have; train "
                f"one with --special-tokens {role}={DEFAULT_SPECIAL_TOKENS[role]}"
            )
        return token_id

    @property
    def all_special_ids(self) -> list[int]:
        """Ids of every special token with a role (what collators never mask or corrupt)."""
        ids = (self.special_token_id(role) for role in SPECIAL_TOKEN_ROLES)
        return sorted({i for i in ids if i is not None})

    def transformers_special_tokens(self) -> dict[str, str]:
        """The ``{role}_token`` keys ``transformers`` reads from ``tokenizer_config.json``."""
        return {f"{role}_token": token for role, token in self.special_token_roles.items()}

    pad_token_id = _role_id("pad")
    bos_token_id = _role_id("bos")
    eos_token_id = _role_id("eos")
    unk_token_id = _role_id("unk")
    mask_token_id = _role_id("mask")
    sep_token_id = _role_id("sep")
    cls_token_id = _role_id("cls")


def roles_from_config(config: Mapping[str, object], tokens: Sequence[str]) -> dict[str, str]:
    """The ``role -> token`` map stored in a ``tokenizer_config.json`` (only tokens that exist)."""
    roles = {}
    for role in SPECIAL_TOKEN_ROLES:
        token = config.get(f"{role}_token")
        if isinstance(token, dict):  # transformers may write AddedToken dicts
            token = token.get("content")
        if isinstance(token, str) and token in tokens:
            roles[role] = token
    return roles

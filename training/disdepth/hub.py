"""Hugging Face models from a local folder or a hub id, with a model that cannot be loaded as one line.

Every place that loads a hub id or folder (``model.pretrained``, ``teacher.path``, ``export.py --hf``) goes
through :func:`load_pretrained`, so a machine that cannot reach the hub, a folder without config.json or
weights, and a gated or misspelt id all stop at start with the same kind of message (docs/design.md section 3:
bad input is one line, exit 2):

    <key>=<id> cannot be loaded: <why>; give <what to give instead>

transformers' own error spans several lines and huggingface_hub logs each retry; the first line of the one and
none of the other are kept.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from huggingface_hub import hf_hub_download
from huggingface_hub.errors import EntryNotFoundError

Loaded = TypeVar('Loaded')
#: the sentence transformers raises when a hub file is neither cached nor downloadable
_UNREACHABLE = "couldn't connect to"


#: what to give instead of a hub id that cannot be loaded, the start of every load_pretrained ``instead``
LOCAL_FOLDER = ('a local folder with its config.json and weights (save_pretrained, or `hf download ID --local-dir '
                'DIR` on a machine that reaches the hub)')


class ModelSourceError(ValueError):
    """A hub id or local folder that cannot be loaded (the message names it and what to give instead)."""


@contextmanager
def _quiet_hub():
    """huggingface_hub logs one warning per retry of an unreachable hub; the error line says it once."""
    logger = logging.getLogger('huggingface_hub')
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)


def why_not_loaded(source: str, exc: BaseException) -> str:
    """One clause saying why ``source`` (hub id or folder) could not be loaded, from transformers' error."""
    folder = Path(source).expanduser()
    if folder.is_dir() and not (folder / 'config.json').is_file():
        return f'the folder has no config.json (its files: {sorted(p.name for p in folder.iterdir())[:5]})'
    if not folder.exists() and source.startswith(('/', '.', '~')):  # a path, never a hub id
        return 'no such folder'
    text = str(exc).strip()
    if _UNREACHABLE in text:
        offline = (' (HF_HUB_OFFLINE is set)' if os.environ.get('HF_HUB_OFFLINE', '0') not in ('', '0')
                   else ' (HF_HUB_OFFLINE=1 skips the retries)')  # 20-35 s of them on a machine without the hub
        return f'no such folder here, not in the Hugging Face cache, and the hub cannot be reached{offline}'
    first_line = text.splitlines()[0] if text else type(exc).__name__
    return first_line.removeprefix('Error ').rstrip('.')  # e.g. "no file named model.safetensors, ... in directory X"


def load_pretrained(load: Callable[[str], Loaded], source: str, key: str, instead: str) -> Loaded:
    """``load(source)`` (a transformers ``from_pretrained``), its failures as one line.

    Args:
        load: e.g. ``AutoConfig.from_pretrained`` or ``MobileNetV2Model.from_pretrained``.
        source: local folder or hub id.
        key: the option that named ``source`` (``model.pretrained``, ``teacher.path``, ``--hf``).
        instead: what the user can give instead (a local folder; null for random init where allowed).
    Raises:
        ModelSourceError: ``<key>=<source> cannot be loaded: <why>; give <instead>`` (one line).
    """
    try:
        with _quiet_hub():
            return load(source)
    except (OSError, ValueError) as exc:  # transformers: OSError (files), ValueError (config without model_type)
        raise ModelSourceError(f'{key}={source!r} cannot be loaded: {why_not_loaded(source, exc)}; '
                               f'give {instead}') from exc


def preprocessor_config(source: str) -> dict | None:
    """The preprocessor_config.json of a folder or hub id (cached, or fetched where the hub is reachable), as a
    dict; None when it has none or it cannot be fetched (callers then use the model family's defaults)."""
    folder = Path(source).expanduser()
    if folder.is_dir():
        path = folder / 'preprocessor_config.json'
        return json.loads(path.read_text()) if path.is_file() else None
    try:
        with _quiet_hub():
            return json.loads(Path(hf_hub_download(source, 'preprocessor_config.json')).read_text())
    except (OSError, ValueError, EntryNotFoundError):  # not cached offline, unreachable, no such file or repo
        return None

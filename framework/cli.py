"""Checks of the command line before Hydra composes anything, so a mistyped choice is a one-line error.

Config groups are the folders of ``conf/`` and of every folder a ``hydra.searchpath=[…]`` override adds, so a
task kept outside this repository (its own ``task/``, ``model/``, ``data/`` … folders) is checked alike.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

from framework.errors import UserError

_GROUP_OVERRIDE = re.compile(
    r"^[+~]{0,2}(?P<key>(?P<group>[A-Za-z_][\w/]*)(?:@[\w.]+)?)=(?P<value>.*)$"
)  # group=choice, or group@package=choice (a group placed elsewhere, e.g. model@model.net=dad_ae)
_SWEEP_FUNCTIONS = ("range(", "choice(", "interval(", "tag(", "glob(", "sort(", "shuffle(")
SEARCHPATH = "hydra.searchpath="


def search_dirs(argv: Sequence[str], conf_dir: str | Path) -> list[Path]:
    """``conf_dir`` and the local folders of a ``hydra.searchpath=[file://…, …]`` override."""
    dirs = [Path(conf_dir)]
    for arg in argv:
        if arg.lstrip("+").startswith(SEARCHPATH):
            entries = arg.lstrip("+")[len(SEARCHPATH) :].strip("[]")
            for entry in filter(None, (e.strip().strip("'\"") for e in entries.split(","))):
                if not entry.startswith("pkg://"):
                    dirs.append(Path(entry.removeprefix("file://")))
    return dirs


def group_choices(conf_dirs: Path | Sequence[Path], group: str) -> list[str]:
    """The configs of ``group`` in every folder of ``conf_dirs``."""
    conf_dirs = [conf_dirs] if isinstance(conf_dirs, Path) else conf_dirs
    return sorted({p.stem for conf_dir in conf_dirs for p in (Path(conf_dir) / group).glob("*.yaml")})


def check_group_overrides(argv: Sequence[str], conf_dir: str | Path) -> None:
    """Raise :class:`UserError` naming the valid choices when ``group=value`` names no config.

    Only config groups (folders of the config dirs) are checked; sweeps ``model=dad,hio`` are split on commas.
    """
    dirs = search_dirs(argv, conf_dir)
    for arg in argv:
        match = _GROUP_OVERRIDE.match(arg)
        if not match or arg.startswith("~"):
            continue
        group, value = match["group"], match["value"].strip()
        if group.startswith("hydra/") or not any((d / group).is_dir() for d in dirs):
            continue
        if not value or value == "null" or value.startswith(_SWEEP_FUNCTIONS):
            continue
        choices = group_choices(dirs, group)
        for choice in value.split(","):
            if choice.strip() not in choices:
                raise UserError(
                    f"{match['key']}={choice.strip()} is not a config; valid {group} choices: "
                    f"{', '.join(choices)}"
                )


def compose_argv(argv: Sequence[str], conf_dir: str | Path, ignore: Sequence[str] = ()) -> DictConfig:
    """The config ``argv`` composes to, as Hydra will compose it (``hydra.*`` overrides other than the search
    path, and the keys in ``ignore``, are left out)."""
    from hydra import compose, initialize_config_dir

    overrides = [
        arg
        for arg in argv
        if arg.lstrip("+").startswith(SEARCHPATH)
        or not arg.lstrip("+~").startswith(("hydra.", *(f"{key}=" for key in ignore)))
    ]
    with initialize_config_dir(config_dir=str(Path(conf_dir).resolve()), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def check_composition(argv: Sequence[str], conf_dir: str | Path) -> None:
    """Compose the config as Hydra will and turn a composition error (a misspelt key such as
    ``trainer.max_epoch=3``) into one line. Skipped with flags (``-m``, ``--cfg``)."""
    if any(arg.startswith("-") for arg in argv):
        return
    from hydra.errors import HydraException

    try:
        compose_argv(argv, conf_dir)
    except HydraException as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if "not in struct" in str(error.__cause__) and "'" in message:
            key = message.split("'")[1]
            message = f"{key} is not a config key: check its spelling (or add a new key with +{key}=...)"
        raise UserError(message) from None

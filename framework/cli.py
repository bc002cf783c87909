"""Checks of the command line before Hydra composes anything, so a mistyped choice is a one-line error."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from framework.errors import UserError

_GROUP_OVERRIDE = re.compile(
    r"^[+~]{0,2}(?P<key>(?P<group>[A-Za-z_][\w/]*)(?:@[\w.]+)?)=(?P<value>.*)$"
)  # group=choice, or group@package=choice (a group placed elsewhere, e.g. model@model.net=dad_ae)
_SWEEP_FUNCTIONS = ("range(", "choice(", "interval(", "tag(", "glob(", "sort(", "shuffle(")


def group_choices(conf_dir: Path, group: str) -> list[str]:
    return sorted(p.stem for p in (conf_dir / group).glob("*.yaml"))


def check_group_overrides(argv: Sequence[str], conf_dir: str | Path) -> None:
    """Raise :class:`UserError` naming the valid choices when ``group=value`` names no config.

    Only config groups (folders of ``conf/``) are checked; sweeps ``model=dad,hio`` are split on commas.
    """
    conf_dir = Path(conf_dir)
    for arg in argv:
        match = _GROUP_OVERRIDE.match(arg)
        if not match or arg.startswith("~"):
            continue
        group, value = match["group"], match["value"].strip()
        if group.startswith("hydra/") or not (conf_dir / group).is_dir():
            continue
        if not value or value == "null" or value.startswith(_SWEEP_FUNCTIONS):
            continue
        choices = group_choices(conf_dir, group)
        for choice in value.split(","):
            if choice.strip() not in choices:
                raise UserError(
                    f"{match['key']}={choice.strip()} is not a config; valid {group} choices: "
                    f"{', '.join(choices)}"
                )


def check_composition(argv: Sequence[str], conf_dir: str | Path) -> None:
    """Compose the config as Hydra will and turn a composition error (a misspelt key such as
    ``trainer.max_epoch=3``) into one line. Skipped with flags (``-m``, ``--cfg``); ``hydra.*`` is ignored."""
    if any(arg.startswith("-") for arg in argv):
        return
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    overrides = [arg for arg in argv if not arg.lstrip("+~").startswith("hydra.")]
    try:
        with initialize_config_dir(config_dir=str(Path(conf_dir).resolve()), version_base="1.3"):
            compose(config_name="config", overrides=overrides)
    except HydraException as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if "not in struct" in str(error.__cause__) and "'" in message:
            key = message.split("'")[1]
            message = f"{key} is not a config key: check its spelling (or add a new key with +{key}=...)"
        raise UserError(message) from None

"""`--config FILE.toml`: a command's table of a TOML file as command-line
tokens, so every value goes through the same parsing and checks as a flag.

Keys are the long option names, with dashes or underscores
(``validate-every`` or ``validate_every``); booleans are ``true``/``false``,
lists (``cfactor = [4, 2]``) become comma-separated values.
"""

import argparse

from .errors import UsageError


def load_toml(path):
    try:
        import tomllib as toml
    except ImportError:  # Python < 3.11
        try:
            import tomli as toml
        except ImportError:
            raise UsageError(f"reading {path} needs Python >= 3.11 or the tomli package "
                             "(pip install tomli)") from None
    try:
        with open(path, "rb") as f:
            return toml.load(f)
    except FileNotFoundError:
        raise UsageError(f"config file not found: {path}") from None
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror}") from None
    except toml.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}") from None


def config_tokens(path, parser, table_name):
    """The ``[table_name]`` table of ``path`` as tokens for ``parser``."""
    data = load_toml(path)
    table = data.get(table_name)
    if not isinstance(table, dict):
        raise UsageError(f"{path}: expected a [{table_name}] table")
    options = {}
    for action in parser._actions:
        for s in action.option_strings:
            if s.startswith("--"):
                options[s[2:].replace("-", "_")] = (s, action)
    tokens = []
    for key, value in table.items():
        norm = key.replace("-", "_")
        if norm in ("config", "help") or norm not in options:
            raise UsageError(f"{path}: unknown key {key!r} in [{table_name}]")
        flag, action = options[norm]
        if isinstance(action, argparse.BooleanOptionalAction):
            if not isinstance(value, bool):
                raise UsageError(f"{path}: {key} must be true or false, got {value!r}")
            base = action.option_strings[0]  # "--mgrit" (then "--no-mgrit")
            on = value if flag == base else not value
            tokens.append(base if on else "--no-" + base[2:])
        elif isinstance(value, bool) or isinstance(value, dict):
            raise UsageError(f"{path}: {key} must not be {value!r}")
        elif isinstance(value, list):
            if not value or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                    for v in value):
                raise UsageError(f"{path}: {key} must be a list of numbers, got {value!r}")
            tokens.append(f"{flag}={','.join(str(v) for v in value)}")
        else:  # --flag=value: a value starting with "-" stays a value
            tokens.append(f"{flag}={value}")
    return tokens

"""``python -m metainv.tpms [options]``: the same as ``metainv laws tpms [options]`` (the older
spellings ``--densities A B ...`` and ``--variants A B`` are accepted)."""

import sys

from metainv.cli import app

_LISTS = {"--densities": "--density", "--variants": "--variant"}


def repeated_options(argv: list[str]) -> list[str]:
    """``--densities 0.1 0.2`` -> ``--density 0.1 --density 0.2`` (likewise ``--variants``)."""
    words: list[str] = []
    option = None
    for word in argv:
        if word in _LISTS:
            option = _LISTS[word]
        elif option is not None and not word.startswith("--"):
            words += [option, word]
        else:
            option = None
            words.append(word)
    return words


if __name__ == "__main__":
    app(["laws", "tpms", *repeated_options(sys.argv[1:])])

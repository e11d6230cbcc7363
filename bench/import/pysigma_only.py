"""Parse Sigma files with pySigma alone, the baseline of the import benchmark.

    python bench/import/pysigma_only.py PATH...

Reads every *.yml file under the given folders and parses each with
`SigmaCollection.from_yaml`, as sigma-cli does per file, without touching a database.
Prints one JSON line: files, rules parsed, files with errors.
"""

import json
import sys
from pathlib import Path

from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaError


def rule_files(paths: list[Path]) -> list[Path]:
    files = []
    for path in paths:
        files += sorted(path.rglob("*.yml")) if path.is_dir() else [path]
    return files


def main(argv: list[str]) -> int:
    files = rule_files([Path(argument) for argument in argv])
    rules = 0
    failed = 0
    for path in files:
        text = path.read_text(encoding="utf-8")
        try:
            collection = SigmaCollection.from_yaml(text, collect_errors=True)
        except (SigmaError, ValueError) as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            failed += 1
            continue
        rules += len(collection.rules)
        failed += bool(collection.errors)
    print(json.dumps({"files": len(files), "rules": rules, "files_with_errors": failed}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

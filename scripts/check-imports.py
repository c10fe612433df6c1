#!/usr/bin/env python3
"""Every module a target imports must be one of its declared dependencies.

SwiftPM builds targets in parallel. A module that a target imports but does not declare may still be built
in time on one machine (because some other target needs it) and be missing on another, which is how an
undeclared `import NIOEmbedded` once passed locally and failed CI. This check makes that a clear error.

Usage: scripts/check-imports.py   (reads `swift package dump-package`; exits 1 listing each undeclared import)
"""

import json
import pathlib
import re
import subprocess
import sys

# Modules that come with the toolchain and need no declaration.
TOOLCHAIN = {
    "Foundation", "FoundationEssentials", "FoundationNetworking", "Synchronization", "Testing", "XCTest",
    "Dispatch", "Glibc", "Musl", "Darwin", "_Concurrency", "os",
}

IMPORT = re.compile(
    r"^\s*(?:@testable\s+|@_exported\s+|@preconcurrency\s+)*"
    r"(?:public\s+|internal\s+|package\s+|private\s+|fileprivate\s+)?"
    r"import\s+(?:struct\s+|class\s+|enum\s+|protocol\s+|func\s+|var\s+|typealias\s+)?([A-Za-z_][A-Za-z0-9_]*)",
    re.MULTILINE,
)


def main() -> int:
    root = pathlib.Path(__file__).resolve().parent.parent
    manifest = json.loads(
        subprocess.run(
            ["swift", "package", "dump-package"], cwd=root, check=True, capture_output=True, text=True
        ).stdout
    )
    problems = []
    for target in manifest["targets"]:
        if target["type"] == "system":
            continue
        declared = set()
        for dependency in target["dependencies"]:
            for kind in ("byName", "target", "product"):
                if kind in dependency:
                    declared.add(dependency[kind][0])
        folder = "Tests" if target["type"] == "test" else "Sources"
        directory = root / (target.get("path") or f"{folder}/{target['name']}")
        for source in sorted(directory.rglob("*.swift")):
            for module in sorted(set(IMPORT.findall(source.read_text()))):
                if module not in declared and module not in TOOLCHAIN and module != target["name"]:
                    problems.append(f"{source.relative_to(root)}: imports {module}, "
                                    f"which target {target['name']} does not declare")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

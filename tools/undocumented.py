#!/usr/bin/env python3
"""Public declarations of the library targets without a doc comment (protocol witnesses such as
`description`, `kind`, `init(from:)`, `encode(to:)`, `==` take their protocol's documentation).
Prints file:line: declaration for each and the count; exits 1 when there is any."""
import glob, re, sys

WITNESS = re.compile(r"public (var description\b|var kind: FailureKind|init\(from decoder|func encode\(to encoder|static func ==|func hash\(into|var debugDescription|var errorDescription|func makeIterator|func next\(\))")
missing = []
for path in sorted(glob.glob("Sources/ClipDetect*/**/*.swift", recursive=True)):
    if path.startswith("Sources/ClipDetectServer/"):
        continue
    lines = open(path, encoding="utf-8").read().split("\n")
    for i, line in enumerate(lines):
        text = line.strip()
        if not text.startswith("public ") or text.startswith(("public extension", "public import")) or WITNESS.match(text):
            continue
        j = i - 1
        while j >= 0 and lines[j].strip().startswith("@"):
            j -= 1
        if not lines[j].strip().startswith("///"):
            missing.append(f"{path}:{i + 1}: {text[:120]}")
print("\n".join(missing))
print(f"{len(missing)} public declarations without documentation", file=sys.stderr)
sys.exit(1 if missing else 0)

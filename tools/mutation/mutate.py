"""Mutation check (not part of CI): flips one operator or constant at a time in the library, rebuilds,
runs the whole test suite, and reports whether the suite failed (the mutant was killed).

  python3 tools/mutation/mutate.py [--only NAME ...] [--list]

Each site is an exact snippet of a source file and its mutated text; a snippet that no longer
matches exactly once stops the run (the list must follow the code). The file is restored after
each mutant, also on Ctrl-C. Results: a table on stdout; docs/mutation.md keeps the last one.
Takes about 2–3 minutes a mutant on 2 cores (incremental debug build + the suite).
"""
import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB = "Sources/"

# (name, file, original, mutant): each a mistake a real change could make.
SITES = [
    ("auc-ties-not-half", LIB + "ClipDetectTools/Metrics/Metrics.swift",
     "let width: Double = fpr[b] - fpr[a], height: Double = tpr[b] + tpr[a]",
     "let width: Double = fpr[b] - fpr[a], height: Double = 2 * tpr[b]"),
    ("eer-crossing-strict", LIB + "ClipDetectTools/Metrics/Metrics.swift",
     "for i in 1..<fpr.count where 1 - tpr[i] <= fpr[i] {",
     "for i in 1..<fpr.count where 1 - tpr[i] < fpr[i] {"),
    ("tpr-at-fpr-strict", LIB + "ClipDetectTools/Metrics/Metrics.swift",
     "filter { $0.0 <= limit }",
     "filter { $0.0 < limit }"),
    ("ece-bin-count", LIB + "ClipDetectTools/Metrics/Metrics.swift",
     "let bin = min(Int(p * Double(bins)), bins - 1)",
     "let bin = min(Int(p * Double(bins - 1)), bins - 1)"),
    ("nll-sign", LIB + "ClipDetectTools/Metrics/Metrics.swift",
     "sum - Logistic.logSigmoid(pair.0 ? pair.1 : -pair.1)",
     "sum - Logistic.logSigmoid(pair.0 ? -pair.1 : pair.1)"),
    ("sigmoid-negative-branch", LIB + "ClipDetectCore/Support/Logistic.swift",
     "x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x))",
     "x > 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(-x))"),
    ("median-even", LIB + "ClipDetectDetection/Decision/Fusion.swift",
     "(sorted[n / 2 - 1] + sorted[n / 2]) / 2",
     "sorted[n / 2]"),
    ("soft-or-small-u", LIB + "ClipDetectDetection/Decision/Fusion.swift",
     "return u > 1e-8 ? u + log(-expm1(-u)) : logU + u / 2",
     "return u > 1e-8 ? u + log(-expm1(-u)) : logU"),
    ("threshold-inclusive", LIB + "ClipDetectDetection/Decision/DecisionRule.swift",
     "if let threshold { return score > threshold }",
     "if let threshold { return score >= threshold }"),
    ("layernorm-eps", LIB + "ClipDetectEncoder/Kernels.swift",
     "(total / Double(width) + Double(eps)).squareRoot()",
     "(total / Double(width) + 1e-3).squareRoot()"),
    ("attention-scale", LIB + "ClipDetectEncoder/EncoderBackend.swift",
     "let scale = 1 / Float(hd).squareRoot()",
     "let scale = 1 / Float(hd + 1).squareRoot()"),
    ("platt-target-high", LIB + "ClipDetectTools/Calibrate/PlattScaling.swift",
     "let high = (positives + 1) / (positives + 2)",
     "let high = positives / (positives + 1)"),
    ("balanced-accuracy-one-rate", LIB + "ClipDetectTools/Metrics/Metrics.swift",
     "return rates.reduce(0, +) / Double(max(rates.count, 1))",
     "return rates.first ?? 0"),
]


def run(command, log):
    with open(log, "a") as f:
        return subprocess.run(command, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT).returncode


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", help="names of the sites to try")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    sites = [s for s in SITES if not args.only or s[0] in args.only]
    if args.list:
        for name, path, *_ in sites:
            print(f"{name:28} {path}")
        return
    for name, path, original, _ in sites:
        text = open(os.path.join(ROOT, path)).read()
        if text.count(original) != 1:
            sys.exit(f"{name}: the snippet occurs {text.count(original)} times in {path}: update SITES")
    log = os.path.join(ROOT, ".build", "mutation.log")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    open(log, "w").close()
    print("| mutant | file | result | seconds |\n|---|---|---|---|")
    killed = 0
    for name, path, original, mutant in sites:
        full = os.path.join(ROOT, path)
        source = open(full).read()
        start = time.time()
        try:
            with open(full, "w") as f:
                f.write(source.replace(original, mutant))
            with open(log, "a") as f:
                f.write(f"\n==== {name}\n")
            if run(["swift", "build", "--build-tests"], log) != 0:
                result = "killed (does not build)"
            else:
                result = "survived" if run(["swift", "test", "--skip-build"], log) == 0 else "killed"
        finally:
            with open(full, "w") as f:
                f.write(source)
        killed += result.startswith("killed")
        print(f"| {name} | {path.removeprefix(LIB)} | {result} | {time.time() - start:.0f} |", flush=True)
    print(f"\nmutation score: {killed}/{len(sites)} killed")
    run(["swift", "build", "--build-tests"], log)  # leave the build as the sources are


if __name__ == "__main__":
    main()

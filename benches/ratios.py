#!/usr/bin/env python3
"""The design's performance targets as ratios, from the last `cargo bench` run.

Usage: python3 benches/ratios.py [CRITERION_DIR]   (default: target/criterion, or
$CARGO_TARGET_DIR/criterion). Reads criterion's estimates.json files and uses the estimate
criterion prints: the slope of the linear regression when it has one, else the mean.
"""
import json
import os
import sys

if len(sys.argv) > 1:
    ROOT = sys.argv[1]
else:
    ROOT = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "criterion")


def mean(bench):
    path = os.path.join(ROOT, bench, "new", "estimates.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        estimates = json.load(f)
    return (estimates.get("slope") or estimates["mean"])["point_estimate"]


def human(ns):
    if ns >= 1e6:
        return "%.2f ms" % (ns / 1e6)
    if ns >= 1e3:
        return "%.2f µs" % (ns / 1e3)
    return "%.0f ns" % ns


def main():
    print("All benchmarks:")
    for directory, _, files in sorted(os.walk(ROOT)):
        if os.path.basename(directory) == "new" and "estimates.json" in files:
            bench = os.path.relpath(os.path.dirname(directory), ROOT)
            print("  %-52s %s" % (bench, human(mean(bench))))

    print("\nTargets:")

    def ratio(label, numerator, denominator, limit):
        a, b = mean(numerator), mean(denominator)
        if a is None or b is None:
            print("  %-56s not measured" % label)
            return
        verdict = "met" if a / b <= limit else "MISSED"
        print("  %-56s %5.2fx  (at most %.1fx: %s)" % (label, a / b, limit, verdict))

    def absolute(label, bench, limit_ns):
        a = mean(bench)
        if a is None:
            print("  %-56s not measured" % label)
            return
        verdict = "met" if a <= limit_ns else "MISSED"
        print("  %-56s %s  (under %s: %s)" % (label, human(a), human(limit_ns), verdict))

    for alg in ("ecdsa_p256", "rsa2048"):
        group = "verify_" + alg
        ratio(alg + ": verify_server / its signatures",
              group + "/verify_server", group + "/signatures_only", 1.3)
        ratio(alg + ": parse + verify_server / its signatures",
              group + "/parse_and_verify_server", group + "/signatures_only", 1.3)
        ratio(alg + ": PEM text + verify_server (C callers) / its signatures",
              group + "/pem_verify_server", group + "/signatures_only", 1.3)
        ratio(alg + ": verify_server with a 100k CRL / without",
              group + "/verify_server_crl_100k", group + "/verify_server", 1.5)
    for case in ("hit", "miss"):
        ratio("known servers, lookup (%s): 100,000 / 10 entries" % case,
              "known_servers_lookup/%s/100000" % case,
              "known_servers_lookup/%s/10" % case, 2.0)
    absolute("known servers, opening 10,000 entries", "known_servers_open/10000", 50e6)
    for case in ("no_match", "literal", "wildcard"):
        absolute("allowed DN, 10,000 patterns (%s)" % case,
                 "dn_match_10k/compiled/" + case, 100e3)
    print("\nFor comparison:")
    for case in ("no_match", "literal", "wildcard"):
        a = mean("dn_match_10k/naive_scan/" + case)
        b = mean("dn_match_10k/compiled/" + case)
        if a and b:
            print("  %-56s %5.0fx" % ("allowed DN (%s): naive scan / compiled" % case, a / b))


if __name__ == "__main__":
    main()

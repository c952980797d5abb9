#!/usr/bin/env python3
"""Generate a national-scale RPZ and query files with the shape of the real
Indonesian gambling list (../shared/data/blocklists/gambling-indonesia.txt).

Shape taken from the real list: its distribution of top-level labels, its
second-level labels as a vocabulary (recombined, with digits appended), and
its mix of label counts (about 32% two labels, 66% three - mostly numbered
or short hosts under a shared parent such as ww165392.bocoranbom.site - and
2% four). Names are unique; half of them also get a `*.` wildcard trigger.
Deterministic for a given seed.

usage: gen.py N OUTDIR [--real PATH]
writes OUTDIR/rpz.zone, OUTDIR/blocked.txt (dnsperf input, 100k names from
the zone), OUTDIR/ixfr-add.txt and ixfr-del.txt (1,000 names each for the
IXFR step), OUTDIR/stats.txt (count, mean name length).
"""
import collections
import os
import random
import sys


def main():
    n = int(sys.argv[1])
    out = sys.argv[2]
    real = "../shared/data/blocklists/gambling-indonesia.txt"
    if "--real" in sys.argv:
        real = sys.argv[sys.argv.index("--real") + 1]
    rng = random.Random(20261128 + n)
    tlds = collections.Counter()
    vocab = []
    for line in open(real, encoding="utf-8", errors="replace"):
        labels = line.strip().lower().split(".")
        if len(labels) < 2:
            continue
        tlds[labels[-1]] += 1
        sld = labels[-2]
        if sld.isascii() and 2 <= len(sld) <= 30 and not sld.startswith("xn--"):
            v = sld.strip("0123456789-")
            if v and all(c.isalnum() or c == "-" for c in v):
                vocab.append(v)
    vocab = sorted(set(vocab))
    tld_list = list(tlds.keys())
    tld_weights = [tlds[t] for t in tld_list]
    hosts = ["www", "m", "ww", "wap", "login", "daftar", "link", "alt", "amp", "id"]

    def sld():
        r = rng.random()
        a = rng.choice(vocab)
        if r < 0.45:
            s = a + str(rng.randint(1, 999))
        elif r < 0.75:
            s = a + rng.choice(vocab)[: rng.randint(3, 8)]
        elif r < 0.85:
            s = a + "-" + rng.choice(vocab)[: rng.randint(3, 8)]
        else:
            s = a
        return s[:40].strip("-")

    parents = []
    names = set()
    os.makedirs(out, exist_ok=True)
    while len(names) < n:
        r = rng.random()
        if r < 0.32 or not parents:
            p = sld() + "." + rng.choices(tld_list, tld_weights)[0]
            parents.append(p)
            names.add(p)
        elif r < 0.98:
            # popular parents carry many hosts (ww165392.bocoranbom.site)
            p = parents[min(int(rng.paretovariate(1.2)) - 1, len(parents) - 1) if rng.random() < 0.5 else rng.randrange(len(parents))]
            h = rng.choice(hosts)
            if rng.random() < 0.7:
                h += str(rng.randint(1, 999999))
            names.add(h + "." + p)
        else:
            p = rng.choice(parents)
            names.add(rng.choice(hosts) + "." + sld() + "." + p)
    names = sorted(names, key=lambda _: rng.random())
    total = 0
    with open(os.path.join(out, "rpz.zone"), "w") as f:
        f.write("$TTL 300\n@ SOA ns.rpz.bench. admin.rpz.bench. 1 3600 600 86400 300\n  NS ns.rpz.bench.\nns A 127.0.0.1\n")
        for i, name in enumerate(names):
            total += len(name) + 2  # wire length
            f.write(f"{name} CNAME .\n")
            if i % 2 == 0:
                f.write(f"*.{name} CNAME .\n")
    sample = rng.sample(names, min(100_000, len(names)))
    with open(os.path.join(out, "blocked.txt"), "w") as f:
        for i, name in enumerate(sample):
            # wildcard-covered names too (every other name has *.)
            f.write(f"{name} A\n")
    with open(os.path.join(out, "ixfr-del.txt"), "w") as f:
        for name in names[:1000]:
            f.write(f"{name}\n")
    with open(os.path.join(out, "ixfr-add.txt"), "w") as f:
        for i in range(1000):
            f.write(f"ixfr{i}.added.example\n")
    with open(os.path.join(out, "stats.txt"), "w") as f:
        f.write(f"names {len(names)}\nmean_wire_len {total / len(names):.1f}\nlast {names[-1]}\n")


if __name__ == "__main__":
    main()

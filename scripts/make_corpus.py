#!/usr/bin/env python3
"""Generate a document corpus with planted near-duplicate pairs.

  make_corpus.py OUTDIR N [--pairs K] [--seed S] [--broken] [--words W]

Writes N documents (.txt, .md, .html) of random text over a synthetic
vocabulary; K of them are near-copies (about 5% of words changed, another
format) of K others. `OUTDIR.planted.json` (beside the directory) lists the pairs. `--broken` adds a
corrupt .pdf and an unreadable document (a dangling link).
"""
import argparse
import json
import os
import random


def words(rng, vocab, n):
    return [rng.choice(vocab) for _ in range(n)]


def render(fmt, title, ws):
    text = " ".join(ws)
    if fmt == "md":
        return f"# {title}\n\nSome *notes*: {text}\n"
    if fmt == "html":
        body = text.replace("&", "&amp;")
        return f"<html><head><style>p{{color:red}}</style></head><body><h1>{title}</h1><p>{body}</p></body></html>\n"
    return f"{title}\n{text}\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("n", type=int)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--broken", action="store_true")
    ap.add_argument("--words", type=int, default=0, help="words per document (default 250-450)")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    vocab = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9))) for _ in range(8000)]
    os.makedirs(a.outdir, exist_ok=True)
    formats = ["txt", "md", "html"]
    originals = a.n - a.pairs
    docs = []
    for i in range(originals):
        ws = words(rng, vocab, a.words or rng.randint(250, 450))
        name = f"doc{i:05d}.{formats[i % 3]}"
        docs.append((name, ws))
    pairs = []
    for k in range(a.pairs):
        src_name, src = docs[k * max(1, originals // max(1, a.pairs))]
        copy = list(src)
        for _ in range(max(1, len(copy) // 20)):  # about 5% of words changed
            copy[rng.randrange(len(copy))] = rng.choice(vocab)
        name = f"dup{k:05d}.{formats[(k + 1) % 3]}"
        docs.append((name, copy))
        pairs.append(sorted([src_name, name]))
    for name, ws in docs:
        with open(os.path.join(a.outdir, name), "w") as f:
            f.write(render(name.rsplit(".", 1)[1], name, ws))
    broken = []
    if a.broken:
        with open(os.path.join(a.outdir, "corrupt.pdf"), "wb") as f:
            f.write(b"%PDF-1.4 this is not really a pdf \x00\x01\x02")
        link = os.path.join(a.outdir, "unreadable.txt")
        if os.path.lexists(link):
            os.remove(link)
        os.symlink("/nonexistent/celeris/unreadable.txt", link)
        broken = ["corrupt.pdf", "unreadable.txt"]
    with open(a.outdir.rstrip("/") + ".planted.json", "w") as f:
        json.dump({"pairs": sorted(pairs), "broken": broken, "documents": len(docs) + len(broken)}, f, indent=1)
    print(f"{len(docs) + len(broken)} documents, {len(pairs)} planted pairs in {a.outdir}")


if __name__ == "__main__":
    main()

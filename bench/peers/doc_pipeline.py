"""Python reference of the document workflow (the scaling guide's pipeline,
made to work): fetch replaces itself with chord(extract..., compare), on
fetch_queue / extract_queue / compare_queue. Same algorithms as Celeris:
3-word shingles hashed with 32-bit FNV-1a, a 128-value MinHash, exact Jaccard
up to 300 documents and MinHash + LSH (32 bands x 4 rows) beyond."""
import base64
import html
import os
import re
import subprocess

from array import array

from celery import Celery, chord

broker = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
app = Celery("doc_pipeline", broker=broker, backend=broker)
app.conf.task_routes = {
    "fetch_documents_task": {"queue": "fetch_queue"},
    "extract_data_task": {"queue": "extract_queue"},
    "compare_data_task": {"queue": "compare_queue"},
}
M64 = (1 << 64) - 1
WORD = re.compile(r"[^\W_]+", re.UNICODE)


def fnv1a(s):
    h = 0x811C9DC5
    for b in s.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def mix64(x):
    z = (x + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def features(text):
    words = WORD.findall(text.lower())
    sh = {fnv1a(" ".join(words[i:i + 3])) for i in range(len(words) - 2)} if len(words) >= 3 else ({fnv1a(" ".join(words))} if words else set())
    sig = [min((mix64((s + i * 0x9E3779B97F4A7C15) & M64) >> 32 for s in sh), default=0xFFFFFFFF) for i in range(128)]
    return words, sorted(sh), sig


def text_of(path):
    ext = path.rsplit(".", 1)[-1].lower()
    if ext == "pdf":
        return subprocess.run(["pdftotext", "-q", path, "-"], check=True, capture_output=True).stdout.decode()
    with open(path, encoding="utf-8", errors="replace") as f:
        t = f.read()
    if ext in ("html", "htm"):
        t = re.sub(r"(?is)<(script|style)[^>]*>.*?</\1>", " ", t)
        t = html.unescape(re.sub(r"<[^>]*>", " ", t))
    elif ext in ("md", "markdown"):
        t = re.sub(r"[#*_`>~|-]+", " ", re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", t))
    return t


@app.task(bind=True, name="fetch_documents_task")
def fetch_documents_task(self, blob_path, process=False, threshold=0.5):
    docs = sorted(os.path.join(d, f) for d, _, fs in os.walk(blob_path) for f in fs if not f.startswith("."))
    if not process:
        return docs
    raise self.replace(chord([extract_data_task.s(d) for d in docs], compare_data_task.s(threshold=threshold)))


@app.task(name="extract_data_task")
def extract_data_task(document):
    try:
        words, sh, sig = features(text_of(document))
        return {"document": document, "words": len(words), "shingles": pack(sh), "minhash": pack(sig)}
    except Exception as e:  # per-document error, as Celeris reports it
        return {"document": document, "error": str(e)}


def pack(values):
    """Little-endian u32 array as base64, the same compact form Celeris uses."""
    return base64.b64encode(array("I", values).tobytes()).decode()


def unpack(text):
    return list(array("I", base64.b64decode(text)))


def jaccard(a, b):
    return len(a & b) / len(a | b) if (a or b) else 0.0


@app.task(name="compare_data_task")
def compare_data_task(results, threshold=0.5):
    docs = [dict(r, shingles=unpack(r["shingles"]), minhash=unpack(r["minhash"])) for r in results if "error" not in r]
    errors = [{"document": r["document"], "error": r["error"]} for r in results if "error" in r]
    sets = [set(d["shingles"]) for d in docs]
    pairs = set()
    if len(docs) <= 300:
        cand = ((i, j) for i in range(len(docs)) for j in range(i + 1, len(docs)))
    else:
        cand = set()
        for band in range(32):
            buckets = {}
            for i, d in enumerate(docs):
                buckets.setdefault(tuple(d["minhash"][band * 4:(band + 1) * 4]), []).append(i)
            for m in buckets.values():
                cand.update((m[x], m[y]) for x in range(len(m)) for y in range(x + 1, len(m)))
    for i, j in cand:
        s = jaccard(sets[i], sets[j])
        if s >= threshold:
            pairs.add((docs[i]["document"], docs[j]["document"], round(s, 4)))
    return {"documents": len(results), "compared": len(docs),
            "pairs": [{"a": a, "b": b, "similarity": s} for a, b, s in sorted(pairs, key=lambda p: -p[2])],
            "errors": errors}

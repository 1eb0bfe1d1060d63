#!/usr/bin/env python3
# Copy of the phiguard project's own reference scorer, /work/shared/tools/score.py in the project
# workspace (shared/tools/score.py beside the repository), kept here so the repository stands alone.
# `phiguard eval` and the phiguard-eval crate must agree with it exactly; the tests in
# crates/eval/tests/it and crates/phiguard/tests/eval_agrees_with_score_py.rs run it. Do not edit:
# refresh it from shared/tools/score.py when that changes.
"""Score PHI predictions against gold, token level.

  score.py GOLD.jsonl [NAME=]PRED.jsonl [[NAME=]PRED2.jsonl ...] [--md out.md] [--json out.json]

Files are JSONL, one doc per line: {"id", "text", "spans": [{"start","end","category","text"}]}.
Offsets are Python str indices (Unicode code points) into "text", end exclusive.

Definitions (identical for every system, so results are side by side):
  * tokens   = maximal runs of alphanumeric characters: regex [^\\W_]+ (Unicode
               letters/digits; '_' and punctuation separate tokens).
  * gold PHI token      = token overlapping (>= 1 shared character) any gold span.
  * predicted PHI token = token overlapping any predicted span.
  (a) binary token precision / recall / F1 (micro over all tokens of the scored docs)
  (b) per gold category: token recall (tokens overlapping a span of that category
      that are predicted), span full-recall (all the span's tokens predicted) and
      span any-hit (at least one token predicted)
  (c) for each category, the most frequent gold span texts that were missed, where
      "missed" = at least one token of the span not predicted (i.e. something leaked)
  plus the most frequent false-positive tokens and per-predicted-label precision.
  --safe-harbor = --dont-care ORGANIZATION,PROFESSION,OTHER --year-only-dont-care.
  --dont-care CATS / --year-only-dont-care: tokens covered only by such gold
  spans count neither way in (a) (a "Safe Harbor view"); (b)/(c) still list them.

Only documents present in every prediction file are scored (so --limit runs
score on their subset); the count is reported. Gold text is used for
tokenization; a prediction file's "text", if present, must match it.
"""
import argparse
import bisect
import json
import re
import sys
from collections import Counter, defaultdict

TOKEN_RE = re.compile(r"[^\W_]+")


def read_jsonl(path):
    out = {}
    order = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            d = json.loads(line)
            out[d["id"]] = d
            order.append(d["id"])
    return out, order


def tokens_of(text):
    return [(m.start(), m.end()) for m in TOKEN_RE.finditer(text)]


def overlapping(tok_starts, tok_ends, s, e):
    """indices of tokens overlapping [s, e)"""
    i = bisect.bisect_right(tok_ends, s)  # first token with end > s
    out = []
    while i < len(tok_starts) and tok_starts[i] < e:
        out.append(i)
        i += 1
    return out


def norm(t):
    return " ".join(t.split())


def score_system(gold, pred, ids, min_score=None, exclude_pred=(), top=30, dont_care=(), year_only_dc=False):
    tp = fp = fn = tn = 0
    dc_tokens = 0
    cat_tokens = defaultdict(lambda: [0, 0])  # cat -> [gold tokens, predicted]
    cat_spans = defaultdict(lambda: [0, 0, 0, 0])  # cat -> [spans, full, any, no-token spans]
    missed = defaultdict(Counter)
    missed_tok = defaultdict(Counter)
    fully_missed = defaultdict(Counter)
    fp_tokens = Counter()
    pred_label = defaultdict(lambda: [0, 0])  # label -> [tokens predicted, of which gold]
    bad_gold = text_mismatch = 0
    n_pred_spans = 0
    for doc_id in ids:
        g = gold[doc_id]
        text = g["text"]
        p = pred[doc_id]
        if "text" in p and p["text"] != text:
            text_mismatch += 1
        toks = tokens_of(text)
        ts = [t[0] for t in toks]
        te = [t[1] for t in toks]
        is_gold = bytearray(len(toks))
        is_pred = bytearray(len(toks))
        is_dc = bytearray(len(toks))
        tok_cats = [set() for _ in toks]
        span_tok = []
        for sp in g.get("spans", []):
            s, e, cat = sp["start"], sp["end"], sp.get("category", "UNKNOWN")
            if "text" in sp and text[s:e] != sp["text"]:
                bad_gold += 1
            idx = overlapping(ts, te, s, e)
            span_tok.append((sp, idx))
            dc = cat in dont_care or (year_only_dc and (sp.get("year_only") or sp.get("country")))
            for k in idx:
                if dc:
                    is_dc[k] = 1
                else:
                    is_gold[k] = 1
                tok_cats[k].add(cat)
        tok_labels = [set() for _ in toks]
        for sp in p.get("spans", []):
            if min_score is not None and sp.get("score") is not None and sp["score"] < min_score:
                continue
            if sp.get("category") in exclude_pred:
                continue
            n_pred_spans += 1
            for k in overlapping(ts, te, sp["start"], sp["end"]):
                is_pred[k] = 1
                tok_labels[k].add(sp.get("category", "?"))
        for k, (s, e) in enumerate(toks):
            if is_dc[k] and not is_gold[k]:
                # covered only by don't-care gold spans: left out of P/R/F1
                dc_tokens += 1
            elif is_gold[k] and is_pred[k]:
                tp += 1
            elif is_pred[k]:
                fp += 1
                fp_tokens[text[s:e]] += 1
            elif is_gold[k]:
                fn += 1
            else:
                tn += 1
            for c in tok_cats[k]:
                cat_tokens[c][0] += 1
                cat_tokens[c][1] += is_pred[k]
            for lab in tok_labels[k]:
                pred_label[lab][0] += 1
                pred_label[lab][1] += is_gold[k]
        for sp, idx in span_tok:
            cat = sp.get("category", "UNKNOWN")
            cs = cat_spans[cat]
            cs[0] += 1
            if not idx:
                cs[3] += 1
                continue
            hit = sum(is_pred[k] for k in idx)
            for k in idx:
                if not is_pred[k]:
                    missed_tok[cat][text[toks[k][0]:toks[k][1]]] += 1
            if hit == len(idx):
                cs[1] += 1
            else:
                missed[cat][norm(text[sp["start"]:sp["end"]])] += 1
                if hit == 0:
                    fully_missed[cat][norm(text[sp["start"]:sp["end"]])] += 1
            if hit > 0:
                cs[2] += 1
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    cats = {}
    for c in sorted(set(cat_tokens) | set(cat_spans)):
        gt, pt = cat_tokens[c]
        ns, full, anyh, notok = cat_spans[c]
        scorable = ns - notok
        cats[c] = {
            "spans": ns,
            "tokens": gt,
            "token_recall": round(pt / gt, 4) if gt else None,
            "span_full_recall": round(full / scorable, 4) if scorable else None,
            "span_any_hit": round(anyh / scorable, 4) if scorable else None,
            "spans_without_tokens": notok,
            "missed_spans": sum(missed[c].values()),
            "fully_missed_spans": sum(fully_missed[c].values()),
            "top_missed": missed[c].most_common(top),
            "top_missed_tokens": missed_tok[c].most_common(top),
        }
    labels = {
        lab: {"tokens": n, "precision": round(g / n, 4) if n else None}
        for lab, (n, g) in sorted(pred_label.items(), key=lambda x: -x[1][0])
    }
    return {
        "docs": len(ids),
        "tokens": tp + fp + fn + tn,
        "gold_tokens": tp + fn,
        "pred_tokens": tp + fp,
        "pred_spans": n_pred_spans,
        "tp": tp, "fp": fp, "fn": fn, "dont_care_tokens": dc_tokens,
        "precision": round(prec, 4), "recall": round(rec, 4), "f1": round(f1, 4),
        "per_category": cats,
        "per_pred_label": labels,
        "top_false_positive_tokens": fp_tokens.most_common(top),
        "gold_span_text_mismatches": bad_gold,
        "pred_text_mismatches": text_mismatch,
        "min_score": min_score,
        "dont_care_categories": sorted(dont_care),
        "year_only_dont_care": year_only_dc,
        "excluded_pred_labels": sorted(exclude_pred),
    }


def pct(x):
    return "-" if x is None else f"{100 * x:.1f}"


def markdown(results, title, top_md):
    names = list(results)
    r0 = results[names[0]]
    lines = [f"## {title}", "",
             f"{r0['docs']} docs, {r0['tokens']} tokens, {r0['gold_tokens']} gold PHI tokens"
             + (f", {r0['dont_care_tokens']} don't-care tokens left out "
                f"(categories {','.join(r0['dont_care_categories']) or '-'}"
                f"{'; year-only dates' if r0['year_only_dont_care'] else ''})" if r0['dont_care_tokens'] else "")
             + (f"; predicted spans with score < {r0['min_score']} ignored" if r0['min_score'] is not None else "")
             + ".", "",
             "| system | P | R | F1 | TP | FP | FN |", "|---|---:|---:|---:|---:|---:|---:|"]
    for n in names:
        r = results[n]
        lines.append(f"| {n} | {pct(r['precision'])} | {pct(r['recall'])} | {pct(r['f1'])} | "
                     f"{r['tp']} | {r['fp']} | {r['fn']} |")
    cats = sorted(set().union(*[r["per_category"].keys() for r in results.values()]),
                  key=lambda c: -r0["per_category"].get(c, {"tokens": 0})["tokens"])
    lines += ["", "Per gold category: token recall % / span full-recall % (all tokens of the span predicted).", ""]
    lines.append("| category | spans | tokens | " + " | ".join(names) + " |")
    lines.append("|---|---:|---:|" + "---:|" * len(names))
    for c in cats:
        pc = r0["per_category"].get(c, {})
        cells = []
        for n in names:
            x = results[n]["per_category"].get(c)
            cells.append(f"{pct(x['token_recall'])} / {pct(x['span_full_recall'])}" if x else "-")
        lines.append(f"| {c} | {pc.get('spans', 0)} | {pc.get('tokens', 0)} | " + " | ".join(cells) + " |")
    for n in names:
        r = results[n]
        lines += ["", f"### {n}: most frequent missed gold spans (>=1 token not predicted; top {top_md})", ""]
        for c in cats:
            x = r["per_category"].get(c)
            if not x or not x["top_missed"]:
                continue
            items = "; ".join(f"`{t}`×{k}" if k > 1 else f"`{t}`" for t, k in x["top_missed"][:top_md])
            lines.append(f"- **{c}** ({x['missed_spans']} missed, {x['fully_missed_spans']} fully): {items}")
            toks = ", ".join(f"`{t}`×{k}" for t, k in x["top_missed_tokens"][:min(top_md, 15)])
            lines.append(f"  - missed tokens: {toks}")
        lines += ["", f"{n}: predicted labels (tokens, precision %): " +
                  ", ".join(f"{lab} {v['tokens']} ({pct(v['precision'])})" for lab, v in r["per_pred_label"].items())]
        lines.append(f"{n}: top false-positive tokens: " +
                     ", ".join(f"`{t}`×{k}" for t, k in r["top_false_positive_tokens"][:top_md]))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gold")
    ap.add_argument("preds", nargs="+", help="[NAME=]predictions.jsonl")
    ap.add_argument("--md", default=None, help="write markdown here (also printed)")
    ap.add_argument("--json", default=None, help="write JSON result here")
    ap.add_argument("--title", default=None)
    ap.add_argument("--min-score", type=float, default=None,
                    help="ignore predicted spans whose 'score' is below this (spans without score are kept)")
    ap.add_argument("--exclude-pred-labels", default="", help="comma-separated predicted labels to ignore")
    ap.add_argument("--dont-care", default="",
                    help="comma-separated gold categories whose tokens are left out of P/R/F1 "
                         "(e.g. OTHER,PROFESSION,ORGANIZATION: not Safe Harbor identifiers); "
                         "they still get a per-category recall line")
    ap.add_argument("--year-only-dont-care", action="store_true",
                    help="also leave out DATE spans flagged year_only and LOCATION spans flagged country "
                         "(years, states and countries are allowed by Safe Harbor)")
    ap.add_argument("--safe-harbor", action="store_true",
                    help="the Safe Harbor view: --dont-care ORGANIZATION,PROFESSION,OTHER --year-only-dont-care")
    ap.add_argument("--split-file", default=None, help="splits.tsv (id<TAB>split) to restrict scoring")
    ap.add_argument("--split", default=None, help="split name to keep, with --split-file")
    ap.add_argument("--top", type=int, default=30, help="missed/FP list length in JSON (default 30)")
    ap.add_argument("--top-md", type=int, default=30, help="missed/FP list length in markdown (default 30)")
    args = ap.parse_args()

    gold, order = read_jsonl(args.gold)
    preds = {}
    for p in args.preds:
        head = p.split("=", 1)[0]
        if "=" in p and "/" not in head and not head.endswith(".jsonl"):
            name, path = p.split("=", 1)
        else:
            name, path = p.rsplit("/", 1)[-1].removesuffix(".jsonl"), p
        preds[name] = read_jsonl(path)[0]
    ids = [i for i in order if all(i in pr for pr in preds.values())]
    if len(ids) < len(order):
        print(f"note: {len(ids)} of {len(order)} gold docs are present in every prediction file; "
              f"only those are scored", file=sys.stderr)
    if args.split_file and args.split:
        keep = set()
        with open(args.split_file) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= 2 and parts[1] == args.split:
                    keep.add(parts[0])
        ids = [i for i in ids if i in keep]
        print(f"note: split {args.split!r}: {len(ids)} docs scored", file=sys.stderr)
    extra = [i for pr in preds.values() for i in pr if i not in gold]
    if extra:
        print(f"warning: {len(extra)} predicted doc ids not in gold (ignored)", file=sys.stderr)
    exclude = set(x for x in args.exclude_pred_labels.split(",") if x)
    dont_care = set(x for x in args.dont_care.split(",") if x)
    if args.safe_harbor:
        dont_care |= {"ORGANIZATION", "PROFESSION", "OTHER"}
        args.year_only_dont_care = True
    results = {n: score_system(gold, pr, ids, args.min_score, exclude, args.top, dont_care, args.year_only_dont_care)
               for n, pr in preds.items()}
    title = args.title or args.gold
    md = markdown(results, title, args.top_md)
    print(md)
    if args.md:
        with open(args.md, "w") as f:
            f.write(md)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gold": args.gold, "systems": {n: p for n, p in zip(results, args.preds)},
                       "results": results}, f, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    main()

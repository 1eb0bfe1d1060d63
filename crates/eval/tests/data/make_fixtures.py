#!/usr/bin/env python3
"""Writes the scoring fixtures gold.jsonl, pred_a.jsonl and pred_b.jsonl (run from this folder).

All texts are made up for these tests (no corpus text). Gold spans are marked inline as
{{CATEGORY|text}} or {{CATEGORY+flag|text}} (flag: year_only or country); overlapping spans are
added afterwards by substring. The predictions are the gold perturbed with a fixed random seed:
spans dropped, shifted and relabelled, false spans added, scores attached, one document left out.
The Rust tests build many more perturbations of gold.jsonl themselves.
"""
import json
import random
import re

MARK = re.compile(r"\{\{([A-Z_]+)(?:\+([a-z_]+))?\|(.*?)\}\}", re.S)

DOCS = [
    ("en-1", "Patient {{NAME|John Q. Smith}}, MRN {{MRN|4839201}}, seen {{DATE|03/14/2021}} at "
             "{{ORGANIZATION|Mercy General}} by Dr. {{NAME|Ann O'Neil}}; call {{PHONE|(555) 010-2233}} "
             "or {{EMAIL|j_smith@example.org}}. Portal: {{URL|https://example.org/p?id=ab_12}}.", []),
    ("en-2", "{{AGE_OVER_89|93}}-year-old retired {{PROFESSION|welder}} from {{LOCATION|Springfield}}, "
             "{{LOCATION+country|USA}}; born {{DATE+year_only|1931}}. SSN {{SSN|123-45-6789}}. "
             "Device serial {{DEVICE|SN_88-XK}} implanted {{DATE|Jan 5th, 2019}}.", []),
    ("es-1", "Paciente: {{NAME|María José Núñez}}, DNI {{OTHER_ID|12345678-Z}}. Domicilio: "
             "{{LOCATION|Calle Mayor nº 5, 2º izq.}}, {{LOCATION|Logroño}} ({{LOCATION+country|España}}). "
             "Ingresa en el Hospital Universitario La Paz el {{DATE|3 de enero de 2018}}; "
             "trabaja como {{PROFESSION|enfermera}}. Año {{DATE+year_only|1998}}.",
     [("ORGANIZATION", "Hospital Universitario La Paz"), ("LOCATION", "La Paz")]),
    ("de-1", "Sehr geehrte Frau Kollegin, wir berichten über Herrn {{NAME|Jürgen Weiß}} "
             "(geb. {{DATE|04.04.1957}}), wohnhaft {{LOCATION|Große Straße 12}}, "
             "{{LOCATION|81377 München}}, {{LOCATION+country|Deutschland}}. Er arbeitet als "
             "{{PROFESSION|Maschinenbauingenieur}} im {{ORGANIZATION|Klinikum Großhadern}}. "
             "Zimmer Ⅻ, 12 m². Dr. {{NAME|Mu\u0308ller-Lu\u0308denscheidt}} (NFD).", []),
    ("mixed-1", "Ref. {{NAME|王小明}} / {{NAME|Ελένη Παπαδοπούλου}} / {{NAME|अनिल शर्मा}}; "
                "📞 {{PHONE|555-0199}} ☺ ID {{ACCOUNT|٣٤٥٦٧}}, fax {{FAX|+49 (0)89 1234-5}}.", []),
    ("ws-1", "Address:\n{{LOCATION|12 Elm St.\n\tApt 4\u001c\u00a0 Boston}} — seen {{DATE|2020-02-29}}.\n"
             "Separator-only span: {{OTHER_ID|-- / --}} and {{OTHER|n/a_}}.", []),
    ("bad-text", "Name: {{NAME|Peter Parker}} on {{DATE|12/12/2012}}.", []),
    ("no-spans", "Plain clinical text with no identifiers at all, just words like aspirin 81 mg.", None),
    ("empty-spans", "Another note without PHI: BP 120/80, HR 72.", []),
    ("dup", "First version of a duplicated id: {{NAME|Alice}}.", []),
    (42, "Numeric id: {{NAME|Bob Marley}} at {{LOCATION|Kingston}}, {{LOCATION+country|Jamaica}}.", []),
    ("unpredicted", "This document is missing from the predictions: {{NAME|Carol King}}, "
                    "{{DATE|July 4, 1990}}.", []),
    ("dup", "Second version of the duplicated id: {{NAME|Alice Cooper}} in {{LOCATION|Detroit}}.", []),
    ("uncat", "Span without a category: Zed, and one past the end: tail", []),
    ("empty-text", "", []),
]


def build_gold():
    out = []
    for doc_id, marked, extra in DOCS:
        text = ""
        spans = []
        pos = 0
        for m in MARK.finditer(marked):
            text += marked[pos:m.start()]
            start = len(text)
            text += m.group(3)
            sp = {"start": start, "end": len(text), "category": m.group(1), "text": m.group(3)}
            if m.group(2):
                sp[m.group(2)] = True
            spans.append(sp)
            pos = m.end()
        text += marked[pos:]
        for cat, sub in extra or []:
            s = text.index(sub)
            spans.append({"start": s, "end": s + len(sub), "category": cat, "text": sub})
        spans.sort(key=lambda sp: (sp["start"], -sp["end"]))
        doc = {"id": doc_id, "text": text}
        if doc_id == "bad-text":
            spans[0]["text"] = "Peter Porker"  # does not match the document text
        if doc_id == "uncat":
            s = text.index("Zed")
            spans = [{"start": s, "end": s + 3, "text": "Zed"},
                     {"start": text.index("tail"), "end": len(text) + 5, "category": "OTHER_ID"}]
        if extra is not None:
            doc["spans"] = spans
        out.append(doc)
    return out


LABELS = ["NAME", "DATE", "LOCATION", "ID", "ORGANIZATION"]


def perturb(gold, seed):
    rng = random.Random(seed)
    out = []
    for d in gold:
        if d["id"] == "unpredicted":
            continue
        text = d["text"]
        spans = []
        for sp in d.get("spans", []):
            r = rng.random()
            if r < 0.2:
                continue
            s, e = sp["start"], sp["end"]
            if r < 0.4:
                s += rng.randint(-2, 2)
                e += rng.randint(-2, 2)
            cat = sp.get("category", "NAME") if rng.random() < 0.85 else rng.choice(LABELS)
            p = {"start": s, "end": e, "category": cat}
            if rng.random() < 0.8:
                p["score"] = round(rng.random(), 2)
            spans.append(p)
        for _ in range(rng.randint(0, 3)):
            s = rng.randint(0, max(0, len(text) - 1))
            p = {"start": s, "end": s + rng.randint(0, 10), "category": rng.choice(LABELS),
                 "score": round(rng.random(), 2)}
            spans.append(p)
        rec = {"id": d["id"], "spans": sorted(spans, key=lambda p: p["start"])}
        if rng.random() < 0.5:
            rec["text"] = text if rng.random() < 0.8 else text.upper()
        out.append(rec)
    out.append({"id": "not-in-gold", "text": "x", "spans": []})
    return out


def write(path, records):
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    gold = build_gold()
    write("gold.jsonl", gold)
    write("pred_a.jsonl", perturb(gold, 1))
    write("pred_b.jsonl", perturb(gold, 2))

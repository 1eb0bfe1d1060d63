"""The baseline of the HL7 v2 throughput target: python-hl7 parsing and re-serialising the
same messages (`str(hl7.parse(message))`), messages/s on one thread.

Line endings are normalised to CR first: python-hl7 mis-parses LF and CRLF files otherwise.
Run by scripts/bench-hl7-vs-python.sh; usage: hl7_parse_baseline.py DIR [SECONDS]
"""
import hl7, pathlib, sys, time, re
root = pathlib.Path(sys.argv[1])
msgs = []
for p in sorted(root.rglob("*.hl7")):
    t = p.read_bytes().decode("utf-8", "replace").lstrip("\ufeff")
    t = t.replace("\r\n", "\r").replace("\n", "\r")
    parts = re.split(r"\r(?=MSH)", t)
    for m in parts:
        m = m.strip("\r")
        if m.startswith("MSH"):
            msgs.append(m)
secs = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
n = 0; b = 0; t0 = time.perf_counter()
while time.perf_counter() - t0 < secs:
    for m in msgs:
        out = str(hl7.parse(m))
        n += 1; b += len(m)
el = time.perf_counter() - t0
print(f"python-hl7 {hl7.__version__} parse+str: {n/el:.0f} messages/s {b/el/1e6:.2f} MB/s ({len(msgs)} messages)")

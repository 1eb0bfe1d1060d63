"""Reference figures from pycanon for the phiguard-risk comparison test.

usage: pycanon_ref.py TABLE SEP QI,QI,... SENSITIVE [COL=HIERARCHY_FILE:LEVEL ...] [--suppress-below K]

Reads TABLE with pandas (as pycanon's users do), replaces each listed quasi-identifier by its
generalisation at LEVEL from the ARX hierarchy file (value;level1;...), optionally drops the rows
of classes smaller than K, then prints pycanon's figures as JSON. Exit 3 if pycanon is missing.
"""
import json
import sys

try:
    import numpy as np
    import pandas as pd
    from pycanon import anonymity
    from pycanon.anonymity.utils import aux_anonymity
    from pycanon import metrics
except ImportError as e:  # pragma: no cover
    print(f"pycanon not importable: {e}", file=sys.stderr)
    sys.exit(3)

args = sys.argv[1:]
suppress = None
if "--suppress-below" in args:
    i = args.index("--suppress-below")
    suppress = int(args[i + 1])
    del args[i : i + 2]
table, sep, qi_arg, sa = args[:4]
qi = qi_arg.split(",")
data = pd.read_csv(table, sep=sep)
for spec in args[4:]:
    col, rest = spec.split("=", 1)
    path, level = rest.rsplit(":", 1)
    level = int(level)
    mapping = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n").rstrip("\r")
            if not line:
                continue
            parts = line.split(";")
            mapping[parts[0]] = parts[level]
    data[col] = data[col].astype(str).map(mapping)
    if data[col].isna().any():
        print(f"value of {col} not in hierarchy", file=sys.stderr)
        sys.exit(2)
if suppress is not None:
    sizes = data.groupby(qi)[qi[0]].transform("size")
    data = data[sizes >= suppress].reset_index(drop=True)
# The real-valued entropy l (before pycanon's int()), computed as pycanon does.
equiv = aux_anonymity.get_equiv_class(data, qi)
ent = []
for ec in equiv:
    t = data.iloc[list(ec)]
    values = np.unique(t[sa].values)
    p = [len(t[t[sa] == s]) / len(t) for s in values]
    ent.append(-np.sum(p * np.log(p)))
# Floats as repr strings: Rust parses them correctly rounded (serde_json may not).
out = {
    "records": int(len(data)),
    "k": int(anonymity.k_anonymity(data, qi)),
    "equivalence_classes": len(aux_anonymity.get_equiv_class(data, qi)),
    "l_diversity": int(anonymity.l_diversity(data, qi, [sa])),
    "entropy_l": int(anonymity.entropy_l_diversity(data, qi, [sa])),
    "entropy_l_real": repr(float(min(np.exp(1) ** np.array(ent)))),
    "t_closeness": repr(float(anonymity.t_closeness(data, qi, [sa]))),
    "average_rir": repr(float(metrics.average_rir(data, qi))),
    "max_rir": repr(float(metrics.max_rir(data, qi))),
}
print(json.dumps(out))

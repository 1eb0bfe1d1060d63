#!/usr/bin/env python3
"""Writes rfc6962.json: the RFC 6962 Merkle test vectors used by Certificate Transparency
implementations, cross-checked by an independent implementation of RFC 6962 §2.1 in this file.

The leaves, roots, inclusion proofs and consistency proofs are transcribed from
transparency-dev/merkle (proof/verify_test.go, Apache-2.0), the vectors that Go, C++ and Rust CT
implementations share. This script recomputes every root and proof from the RFC's definitions
(MTH, PATH, SUBPROOF) with hashlib and refuses to write the file if any disagrees; then it
derives the negative vectors (wrong index, wrong size, truncated or extended proof, flipped
bit, wrong root) that a verifier must reject. Run once: python3 gen_rfc6962.py > rfc6962.json
"""
import hashlib
import json

LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
          "606162636465666768696a6b6c6d6e6f"]

# Roots of the trees of the first 1..8 leaves.
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

# (0-based leaf index, tree size, audit path)
INCLUSION = [
    (0, 1, []),
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]

# (old size, new size, proof)
CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]

SOME_HASH = "abacaba000000000000000000000000000000000000000000060061e00123456"
EMPTY_TREE = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def k_of(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d):
    if len(d) == 0:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return leaf_hash(d[0])
    k = k_of(len(d))
    return node_hash(mth(d[:k]), mth(d[k:]))


def path(m, d):
    if len(d) == 1:
        return []
    k = k_of(len(d))
    if m < k:
        return path(m, d[:k]) + [mth(d[k:])]
    return path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m, d, flag):
    n = len(d)
    if m == n:
        return [] if flag else [mth(d)]
    k = k_of(n)
    if m <= k:
        return subproof(m, d[:k], flag) + [mth(d[k:])]
    return subproof(m - k, d[k:], False) + [mth(d[:k])]


def proof(m, d):
    if m == 0 or m == len(d):
        return []
    return subproof(m, d, True)


def flip(h, bit):
    b = bytearray(bytes.fromhex(h))
    b[0] ^= 1 << bit
    return b.hex()


# Not a negative vector: "size + 1". A proof does not bind the tree size by itself where the
# audit path has the same shape in both sizes (index 1 in sizes 5 and 6): the size is bound by
# the signed checkpoint that carries size and root together.


def main():
    data = [bytes.fromhex(x) for x in LEAVES]
    for n in range(1, 9):
        assert mth(data[:n]).hex() == ROOTS[n - 1], f"root of size {n}"
    for (i, n, p) in INCLUSION:
        assert [h.hex() for h in path(i, data[:n])] == p, f"PATH({i}, {n})"
    for (m, n, p) in CONSISTENCY:
        assert [h.hex() for h in proof(m, data[:n])] == p, f"PROOF({m}, {n})"

    inclusion = []
    for (i, n, p) in INCLUSION:
        leaf = leaf_hash(data[i]).hex()
        root = ROOTS[n - 1]
        inclusion.append({"desc": "valid", "index": i, "size": n, "leaf_hash": leaf,
                          "root": root, "proof": p, "valid": True})
        bad = [
            ("index - 1", i - 1, n, leaf, root, p),
            ("index + 1", i + 1, n, leaf, root, p),
            ("index ^ 2", i ^ 2, n, leaf, root, p),
            ("size * 2", i, n * 2, leaf, root, p),
            ("size / 2", i, n // 2, leaf, root, p),
            ("wrong leaf", i, n, leaf_hash(b"WrongLeaf").hex(), root, p),
            ("empty tree root", i, n, leaf, EMPTY_TREE, p),
            ("random root", i, n, leaf, SOME_HASH, p),
            ("trailing root", i, n, leaf, root, p + [root]),
            ("preceding root", i, n, leaf, root, [root] + p),
        ]
        if p:
            bad.append(("truncated proof", i, n, leaf, root, p[:-1]))
            bad.append(("inserted component", i, n, leaf, root, p[:1] + [SOME_HASH] + p[1:]))
            if len(p) > 1:
                bad.append(("swapped components", i, n, leaf, root, [p[1], p[0]] + p[2:]))
        for j in range(len(p)):
            q = list(p)
            q[j] = flip(q[j], 3)
            bad.append((f"flipped bit 3 of proof[{j}]", i, n, leaf, root, q))
        bad.append(("flipped bit 0 of leaf hash", i, n, flip(leaf, 0), root, p))
        bad.append(("flipped bit 7 of root", i, n, leaf, flip(root, 7), p))
        for (desc, bi, bn, bl, br, bp) in bad:
            if bi < 0:
                continue
            inclusion.append({"desc": desc, "index": bi, "size": bn, "leaf_hash": bl,
                              "root": br, "proof": bp, "valid": False})

    consistency = []
    for (m, n, p) in CONSISTENCY:
        r1, r2 = ROOTS[m - 1], ROOTS[n - 1]
        consistency.append({"desc": "valid", "old_size": m, "new_size": n, "old_root": r1,
                            "new_root": r2, "proof": p, "valid": True})
        if not p:
            continue
        bad = [
            ("old size - 1", m - 1, n, r1, r2, p),
            ("old size + 1", m + 1, n, r1, r2, p),
            ("old size ^ 2", m ^ 2, n, r1, r2, p),
            ("new size * 2", m, n * 2, r1, r2, p),
            ("new size / 2", m, n // 2, r1, r2, p),
            ("wrong old root", m, n, SOME_HASH, r2, p),
            ("wrong new root", m, n, r1, SOME_HASH, p),
            ("swapped roots", m, n, r2, r1, p),
            ("empty proof", m, n, r1, r2, []),
            ("trailing old root", m, n, r1, r2, p + [r1]),
            ("trailing new root", m, n, r1, r2, p + [r2]),
            ("preceding old root", m, n, r1, r2, [r1] + p),
            ("preceding new root", m, n, r1, r2, [r2] + p),
            ("preceding proof[0]", m, n, r1, r2, [p[0]] + p),
            ("truncated proof", m, n, r1, r2, p[:-1]),
        ]
        for j in range(len(p)):
            q = list(p)
            q[j] = flip(q[j], 4)
            bad.append((f"flipped bit 4 of proof[{j}]", m, n, r1, r2, q))
        for (desc, bm, bn, b1, b2, bp) in bad:
            # "old size - 1" of 1 is size 0, consistent with anything given an empty proof;
            # with a non-empty proof it must still fail, so keep it.
            consistency.append({"desc": desc, "old_size": bm, "new_size": bn, "old_root": b1,
                                "new_root": b2, "proof": bp, "valid": False})

    out = {
        "source": "RFC 6962 §2.1.3 vectors as in transparency-dev/merkle proof/verify_test.go "
                  "(Apache-2.0), cross-checked by gen_rfc6962.py; negatives derived here",
        "leaves": LEAVES,
        "roots": ROOTS,
        "inclusion": inclusion,
        "consistency": consistency,
    }
    print(json.dumps(out, indent=1))


main()

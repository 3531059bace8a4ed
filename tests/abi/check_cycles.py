#!/usr/bin/env python3
"""check_cycles.py NM OBJECT... -- fail when the objects' files call each other in a cycle.

Each object's defined and undefined symbols (nm) give a graph: file A depends on file B when A
uses a symbol that B defines. A strongly connected component of more than one file is a cycle
(A calls B calls ... calls A); the layout rules (docs/architecture.md, each folder's README.md)
keep libtrifle, the server and the conformance runner free of them."""
import os
import subprocess
import sys


def symbols(nm, obj):
    out = subprocess.run([nm, obj], capture_output=True, text=True, check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TDBRCV":
            defined.add(parts[2])
        elif len(parts) == 2 and parts[0] == "U":
            undefined.add(parts[1])
    return defined, undefined


def name_of(obj):
    # .../CMakeFiles/<target>.dir/<path>.c.o -> <path>.c
    tail = obj.split(".dir/", 1)[-1]
    return tail[:-2] if tail.endswith(".o") else tail


def cycles(deps):
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in deps[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(deps):
        if v not in index:
            visit(v)
    return found


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    nm, objs = sys.argv[1], [o for o in sys.argv[2:] if o]
    defs, undefs = {}, {}
    for obj in objs:
        n = name_of(obj)
        defs[n], undefs[n] = symbols(nm, obj)
    owner = {s: n for n, ss in defs.items() for s in ss}
    deps = {n: {owner[s] for s in undefs[n] if s in owner and owner[s] != n} for n in defs}
    found = cycles(deps)
    for comp in found:
        calls = []
        for a in comp:
            for b in sorted(deps[a] & set(comp)):
                used = sorted(s for s in undefs[a] if owner.get(s) == b)
                calls.append("  %s -> %s: %s" % (a, b, ", ".join(used[:4])))
        print("cycle among %s:\n%s" % (", ".join(comp), "\n".join(calls)))
    if found:
        return 1
    print("%d files, no cycle" % len(defs))
    return 0


if __name__ == "__main__":
    sys.exit(main())

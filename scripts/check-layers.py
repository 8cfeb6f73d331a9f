#!/usr/bin/env python3
"""Checks the include layering of src/ against the layer table.

Reads every `#include "..."` in src/ (.h .cpp .cu .cuh) and fails when a
layer includes a layer, or a header, that the table (scripts/layers.txt) does
not let it use. Each finding names file:line and the forbidden edge.

  python3 scripts/check-layers.py [--root DIR] [--table FILE]

Exit status: 0 clean, 1 forbidden includes found, 2 the table or the tree is
malformed (unknown layer, a use that points up, a folder of src/ that is no
layer). Standard library only: it runs before anything is built.
"""

import argparse
import os
import re
import sys

SOURCE_SUFFIXES = (".h", ".hpp", ".cpp", ".cc", ".cu", ".cuh")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


class TableError(Exception):
    pass


class LayerTable:
    """The parsed table: layers bottom up, and what each may use."""

    def __init__(self):
        self.order = []          # layer names, bottom up
        self.layers = {}         # layer -> set of layers it may use
        self.headers = {}        # layer -> set of single headers (LAYER/path) it may use

    def may_include(self, layer, target_layer, target_path):
        if target_layer == layer:
            return True
        if target_layer in self.layers[layer]:
            return True
        return target_path in self.headers[layer]


def parse_table(path):
    table = LayerTable()
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{path}:{number}"
        if ":" not in line:
            raise TableError(f"{where}: expected 'LAYER: USES...', got '{line}'")
        name, uses = line.split(":", 1)
        name = name.strip()
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise TableError(f"{where}: '{name}' is not a layer name")
        if name in table.layers:
            raise TableError(f"{where}: layer '{name}' is listed twice")
        table.layers[name] = set()
        table.headers[name] = set()
        for use in uses.split():
            used_layer = use.split("/", 1)[0]
            if used_layer == name:
                raise TableError(f"{where}: layer '{name}' lists itself")
            if used_layer not in table.layers:
                raise TableError(f"{where}: layer '{name}' uses '{use}', but '{used_layer}' is not "
                                 "listed above it (layers go bottom up; nothing points back up)")
            if "/" in use:
                table.headers[name].add(use)
            else:
                table.layers[name].add(use)
        table.order.append(name)
    if not table.order:
        raise TableError(f"{path}: no layers")
    return table


def layer_of(rel_path):
    """The layer of a path relative to src/: its first folder."""
    return rel_path.replace(os.sep, "/").split("/", 1)[0]


def resolve_include(src_dir, including_rel, target):
    """The include's path relative to src/, as the compiler finds it: first
    next to the including file, then under the src/ include root. None when
    neither holds the file (a system or third-party header)."""
    here = os.path.dirname(os.path.join(src_dir, including_rel))
    beside = os.path.normpath(os.path.join(here, target))
    if os.path.isfile(beside):
        rel = os.path.relpath(beside, src_dir)
        if not rel.startswith(".."):
            return rel.replace(os.sep, "/")
    if os.path.isfile(os.path.join(src_dir, target)):
        return os.path.normpath(target).replace(os.sep, "/")
    return None


def check_tree(src_dir, table):
    """Returns (findings, errors): forbidden includes, and tree problems."""
    findings, errors = [], []
    for entry in sorted(os.listdir(src_dir)):
        if os.path.isdir(os.path.join(src_dir, entry)) and entry not in table.layers:
            errors.append(f"src/{entry}/ is not a layer of the table: add it (with what it may use)")
    for dirpath, dirnames, filenames in os.walk(src_dir):
        dirnames.sort()
        for filename in sorted(filenames):
            if not filename.endswith(SOURCE_SUFFIXES):
                continue
            rel = os.path.relpath(os.path.join(dirpath, filename), src_dir).replace(os.sep, "/")
            layer = layer_of(rel)
            if layer not in table.layers:
                continue  # reported once above, as a folder
            findings.extend(check_file(src_dir, rel, layer, table))
    return findings, errors


def check_file(src_dir, rel, layer, table):
    findings = []
    with open(os.path.join(src_dir, rel), encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            m = INCLUDE_RE.match(line)
            if not m:
                continue
            target = m.group(1)
            resolved = resolve_include(src_dir, rel, target)
            if resolved is None:
                first = target.split("/", 1)[0]
                if first in table.layers:
                    findings.append(f"src/{rel}:{number}: includes \"{target}\", which does not exist")
                continue  # not a header of src/
            if resolved != target:
                findings.append(f"src/{rel}:{number}: includes \"{target}\" by a relative path; "
                                f"write \"{resolved}\"")
            target_layer = layer_of(resolved)
            if not table.may_include(layer, target_layer, resolved):
                findings.append(f"src/{rel}:{number}: {layer} -> {target_layer} (\"{target}\"): "
                                f"{layer} may use only {describe_uses(table, layer)}")
    return findings


def describe_uses(table, layer):
    uses = sorted(table.layers[layer]) + sorted(table.headers[layer])
    return ", ".join(uses) if uses else "nothing but itself"


def unused_header_grants(src_dir, table):
    """Single-header grants that no include uses any more: stale lines."""
    used = set()
    for dirpath, _, filenames in os.walk(src_dir):
        for filename in filenames:
            if not filename.endswith(SOURCE_SUFFIXES):
                continue
            rel = os.path.relpath(os.path.join(dirpath, filename), src_dir).replace(os.sep, "/")
            with open(os.path.join(src_dir, rel), encoding="utf-8", errors="replace") as f:
                for line in f:
                    m = INCLUDE_RE.match(line)
                    if m:
                        used.add((layer_of(rel), m.group(1)))
    stale = []
    for layer in table.order:
        for header in sorted(table.headers[layer]):
            if (layer, header) not in used:
                stale.append(f"{layer}: {header}")
    return stale


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    root_default = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--root", default=root_default, help="repository root (holds src/)")
    parser.add_argument("--table", help="layer table (default: ROOT/scripts/layers.txt)")
    args = parser.parse_args(argv)
    src_dir = os.path.join(args.root, "src")
    table_path = args.table or os.path.join(args.root, "scripts", "layers.txt")
    if not os.path.isdir(src_dir):
        print(f"check-layers: no src/ under {args.root}", file=sys.stderr)
        return 2
    try:
        table = parse_table(table_path)
    except (OSError, TableError) as e:
        print(f"check-layers: {e}", file=sys.stderr)
        return 2
    findings, errors = check_tree(src_dir, table)
    for e in errors:
        print(f"check-layers: {e}", file=sys.stderr)
    for f in findings:
        print(f, file=sys.stderr)
    for s in unused_header_grants(src_dir, table):
        print(f"check-layers: warning: the grant '{s}' in {table_path} is used by no include; "
              "delete it", file=sys.stderr)
    if errors:
        return 2
    if findings:
        print(f"check-layers: {len(findings)} include(s) break the layer table ({table_path})",
              file=sys.stderr)
        return 1
    print(f"check-layers: src/ follows the layer table ({len(table.order)} layers)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

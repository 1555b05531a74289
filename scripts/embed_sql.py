#!/usr/bin/env python3
"""Turn SQL files into C byte arrays: embed_sql.py OUT.c NAME=FILE...

A byte array rather than a string literal: ISO C caps literals at 4095
characters and the schema is longer."""
import sys

out = sys.argv[1]
with open(out, "w", encoding="ascii") as f:
    f.write("/* Generated from the sql directory by scripts/embed_sql.py. */\n")
    for arg in sys.argv[2:]:
        name, path = arg.split("=", 1)
        with open(path, "rb") as src:
            data = src.read() + b"\0"
        f.write("extern const char %s[];\n" % name)
        f.write("const char %s[] = {\n" % name)
        for i in range(0, len(data), 16):
            f.write("\t" + ", ".join("%d" % b for b in data[i:i + 16]) + ",\n")
        f.write("};\n")

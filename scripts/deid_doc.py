#!/usr/bin/python3
"""The attribute table of docs/deidentification.md, made from dicom/deid_table.cc (the data the
code applies), so the conformance statement cannot drift from the code.

    scripts/deid_doc.py            print the table (markdown)
    scripts/deid_doc.py --check    exit 1 when docs/deidentification.md holds another one
    scripts/deid_doc.py --update   rewrite it between the markers
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE = os.path.join(ROOT, "dicom", "deid_table.cc")
DOC = os.path.join(ROOT, "docs", "deidentification.md")
BEGIN, END = "<!-- deid-table: begin (scripts/deid_doc.py --update) -->", "<!-- deid-table: end -->"
COLUMNS = ["Safe Private", "UIDs", "Device", "Institution", "Patient Chars", "Full Dates",
           "Modified Dates", "Clean Desc", "Clean Struct", "Clean Graph"]
ROW = re.compile(r'\{0x([0-9A-Fa-f]{4}), 0x([0-9A-Fa-f]{4}), 0x([0-9A-Fa-f]{4}),\s*"((?:[^"\\]|\\.)*)", '
                 r'"([^"]*)",\s*\{((?:"[^"]*",?\s*){10})\}\}', re.S)


def rows():
    text = open(TABLE).read()
    for m in ROW.finditer(text):
        group, element, mask, name, basic, opts = m.groups()
        opts = re.findall(r'"([^"]*)"', opts)
        g = group.upper()
        tag = f"({g[:2]}xx,xxxx)" if mask.upper() == "FF00" and element == "0000" else \
              (f"({g[:2]}xx,{element.upper()})" if mask.upper() == "FF00" else f"({g},{element.upper()})")
        yield tag, name, basic, opts


def table():
    out = ["| tag | attribute | Basic | " + " | ".join(COLUMNS) + " |",
           "| --- | --- | --- | " + " | ".join("---" for _ in COLUMNS) + " |"]
    n = 0
    for tag, name, basic, opts in rows():
        out.append(f"| {tag} | {name} | {basic} | " + " | ".join(opts) + " |")
        n += 1
    return "\n".join(out) + f"\n\n{n} rows, and the private attributes rule (every odd group).\n"


def main():
    t = table()
    if len(sys.argv) == 1:
        sys.stdout.write(t)
        return 0
    doc = open(DOC).read()
    a, b = doc.find(BEGIN), doc.find(END)
    if a < 0 or b < a:
        print(f"{DOC}: markers missing", file=sys.stderr)
        return 1
    new = doc[:a + len(BEGIN)] + "\n" + t + doc[b:]
    if sys.argv[1] == "--check":
        if new != doc:
            print(f"{DOC}: the attribute table differs from dicom/deid_table.cc; run scripts/deid_doc.py --update",
                  file=sys.stderr)
            return 1
        return 0
    open(DOC, "w").write(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())

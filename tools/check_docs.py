#!/usr/bin/env python
"""Offline docs check, run after nbdev's proc_nbs (`make docs-pages`): exits 1 when a docs page would be broken.

The site settings must be one regular nbs/_quarto.yml (the file nbdev 2.4.14 reads), copied to _proc/. Every notebook
nbdev documents (under nbs/, skipping names that start with `_` or `.`) needs a processed page in _proc/ no older than
the notebook. In each page every `show_doc` cell needs its rendered doc: a `text/markdown` output with a heading.
That covers the `show_doc(...)` cells written in the notebook (each must reach the page and render, naming
what it documents) and the ones nbdev adds for the public API, so every public function or class of an `export` cell
must have a rendered heading naming it."""
import ast, json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_DIRECTIVE = re.compile(r"^\s*#\s*\|\s*([\w-]+:?)\s*(.*?)\s*$")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.M)
_DOC_DIRECTIVES = {"export", "exports", "exec_doc"}


def notebooks(nbs: Path) -> list:
    "The notebooks nbdev documents: every .ipynb under `nbs` whose path has no part starting with `_` or `.`."
    return sorted(p for p in nbs.rglob("*.ipynb") if not any(s[0] in "_." for s in p.relative_to(nbs).parts))


def directives(src: str) -> dict:
    "The leading `#| key: value` directives of a cell source, as {key without colon: value}."
    out = {}
    for line in src.splitlines():
        m = _DIRECTIVE.match(line)
        if not m: break
        out[m[1].rstrip(":")] = m[2]
    return out


def body(src: str) -> str:
    "A cell source without its directive lines."
    return "\n".join(l for l in src.splitlines() if not _DIRECTIVE.match(l)).strip()


def code_cells(path: Path) -> list:
    "The sources and outputs of a notebook's code cells, as (source, outputs) pairs."
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [("".join(c["source"]), c.get("outputs", [])) for c in cells if c["cell_type"] == "code"]


def _parse(src: str) -> list:
    "The top-level statements of a cell (magics and shell lines dropped), or [] when it does not parse."
    try: return ast.parse(re.sub(r"^\s*[%!].*$", "", body(src), flags=re.M)).body
    except SyntaxError: return []


def _doc_name(call: ast.Call):
    "The name a `show_doc(...)` call documents (its `name=` or the last part of its first argument), or None."
    kw = {k.arg: k.value for k in call.keywords}
    if isinstance(kw.get("name"), ast.Constant): return str(kw["name"].value)
    arg = call.args[0] if call.args else None
    return arg.attr if isinstance(arg, ast.Attribute) else getattr(arg, "id", None)


def show_doc_calls(src: str) -> list:
    "The names documented by a cell's top-level `show_doc(...)` calls (None where the name cannot be read)."
    return [_doc_name(s.value) for s in _parse(src) if isinstance(s, ast.Expr) and isinstance(s.value, ast.Call)
            and getattr(s.value.func, "id", None) == "show_doc"]


def is_hidden(d: dict) -> bool:
    "Whether directives keep a cell off the page."
    return "hide" in d or d.get("include", "").lower() == "false"


def public_names(src: str) -> list:
    "The public functions and classes an exported, shown cell defines (those nbdev documents automatically)."
    d = directives(src)
    if not _DOC_DIRECTIVES & d.keys() or is_hidden(d): return []
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return [s.name for s in _parse(src) if isinstance(s, defs) and not s.name.startswith("_")]


def headings(outputs: list) -> list:
    "The headings of a cell's `text/markdown` outputs, markdown escapes removed."
    md = "\n".join("".join(o.get("data", {}).get("text/markdown", "")) for o in outputs)
    return [h.replace("\\", "").strip("`* ") for h in _HEADING.findall(md)]


def names_in(heads: list) -> set:
    "Every name a list of headings documents, whole (`Class.method`) and by last part (`method`)."
    return {n for h in heads for n in (h, h.split(".")[-1].split("(")[0].strip())}


def check_page(nb: Path, page: Path) -> list:
    "The problems of one notebook's processed page."
    if not page.exists(): return [f"{page}: missing"]
    if page.stat().st_mtime < nb.stat().st_mtime: return [f"{page}: older than {nb.name} (stale)"]
    out = [(body(s), headings(o)) for s, o in code_cells(page) if show_doc_calls(s)]
    problems = [f"{page}: `{b}` has no rendered doc" for b, h in out if not h]
    on_page = {b for b, _ in out}
    src = [s for s, _ in code_cells(nb)]
    problems += [f"{page}: `{body(s)}` of {nb.name} is missing" for s in src
                 if show_doc_calls(s) and not is_hidden(directives(s)) and body(s) not in on_page]
    documented = names_in([x for _, h in out for x in h])
    want = [n for s in src for n in public_names(s)] + [n for s in src if not is_hidden(directives(s))
                                                         for n in show_doc_calls(s) if n]
    problems += [f"{page}: no rendered doc for `{n}`" for n in dict.fromkeys(want) if n not in documented]
    return problems


def check_quarto_yml(root: Path) -> list:
    "The problems of the site settings: one regular nbs/_quarto.yml (the file nbdev 2.4.14 reads), copied to _proc/."
    src, copy, extra = root / "nbs" / "_quarto.yml", root / "_proc" / "_quarto.yml", root / "_quarto.yml"
    if src.is_symlink() or not src.is_file(): return [f"{src}: missing or a link (nbdev would write its default)"]
    problems = [f"{extra}: a second _quarto.yml (nbdev reads only {src})"] if extra.exists() else []
    if not copy.is_file() or copy.read_bytes() != src.read_bytes(): problems.append(f"{copy}: missing or stale")
    return problems


def check(root: Path = ROOT) -> tuple:
    "All problems of the processed pages under `root`, and the number of pages checked."
    nbs = notebooks(root / "nbs")
    problems = check_quarto_yml(root)
    problems += [p for nb in nbs for p in check_page(nb, root / "_proc" / nb.relative_to(root / "nbs"))]
    if not nbs: problems.append(f"{root / 'nbs'}: no notebooks")
    return problems, len(nbs)


def main(argv=sys.argv[1:]) -> int:
    "Print the problems and return 1 if there are any, else print a one-line summary and return 0."
    problems, n = check(Path(argv[0]) if argv else ROOT)
    for p in problems: print(p)
    print(f"docs check: {n} pages, {len(problems)} problems" + ("" if problems else ", ok"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

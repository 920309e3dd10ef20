"""The package's module graph, read from the code's own imports: a layered table for the README and a picture.

Usage: python tools/module_graph.py [--png nbs/images/modules.png] [--check README.md]
"""
import argparse, ast, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = {"_modidx", "__init__", "testing"}      # generated index, package faces, and the test fixtures


def module_name(path: Path, pkg: Path) -> str:
    "Dotted name of a module file below the package, without the package prefix (toy/world.py -> toy.world)."
    parts = path.relative_to(pkg).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(node: ast.ImportFrom, package: list) -> str | None:
    "The dotted module an `ImportFrom` names, relative to the package, or None when it is not glass's."
    if node.level == 0:
        if not (node.module or "").startswith("glass"): return None
        return node.module[len("glass."):] if node.module != "glass" else ""
    base = package[:len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def glass_imports(path: Path, known: set, package: list) -> set:
    "The glass modules that `path` imports anywhere in its body (module level or inside functions)."
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and (base := _absolute(node, package)) is not None:
            names = [f"{base}.{a.name}".strip(".") for a in node.names] + [base]
        elif isinstance(node, ast.Import):
            names = [a.name[len("glass."):] for a in node.names if a.name.startswith("glass.")]
        out |= {n for n in names if n in known}
    return out


def module_graph(pkg: Path = ROOT/"glass") -> dict:
    "`{module: sorted glass modules it imports}` for every module of the package except fixtures and generated files."
    files = {module_name(p, pkg): p for p in sorted(pkg.rglob("*.py")) if p.stem not in SKIP}
    pkgs = {m: list(p.relative_to(pkg).parts[:-1]) for m, p in files.items()}
    return {m: sorted(glass_imports(p, set(files), pkgs[m]) - {m}) for m, p in files.items()}


def layers(graph: dict) -> list:
    "Modules grouped by floor: floor 0 imports no glass module, floor k imports only floors below k."
    floor = {}
    def depth(m, seen=()):
        if m not in floor:
            if m in seen: raise ValueError(f"import cycle through {m}")
            floor[m] = 1 + max((depth(d, seen + (m,)) for d in graph[m]), default=-1)
        return floor[m]
    for m in graph: depth(m)
    return [sorted(m for m in graph if floor[m] == k) for k in range(max(floor.values()) + 1)]


def markdown(graph: dict) -> str:
    "The layered table: one row per module, from the commands at the top to the foundations at the bottom."
    rows = ["| floor | module | imports |", "|---|---|---|"]
    for k, mods in reversed(list(enumerate(layers(graph)))):
        rows += [f"| {k} | `{m}` | {', '.join(f'`{d}`' for d in graph[m]) or '–'} |" for m in mods]
    return "\n".join(rows)


def draw(graph: dict, path: Path):
    "A picture of the floors with an arrow from each module to every module it imports."
    import matplotlib; matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fl = layers(graph); pos = {}
    width = max(len(f) for f in fl)
    for k, mods in enumerate(fl):
        for i, m in enumerate(mods): pos[m] = ((i + 0.5) * width / len(mods), k)
    fig, ax = plt.subplots(figsize=(1.6 * width, 1.0 * len(fl) + 0.5))
    for m, deps in graph.items():
        for d in deps:
            ax.annotate("", xy=pos[d], xytext=pos[m], arrowprops=dict(arrowstyle="->", color="0.6", lw=0.6, shrinkA=9, shrinkB=9))
    for m, (x, y) in pos.items():
        ax.text(x, y, m, ha="center", va="center", fontsize=8, bbox=dict(boxstyle="round", fc="#e8f0fe", ec="#4a6fa5"))
    ax.set_xlim(-0.2, width + 0.2); ax.set_ylim(-0.6, len(fl) - 0.4); ax.axis("off")
    fig.tight_layout(); path.parent.mkdir(parents=True, exist_ok=True); fig.savefig(path, dpi=110); plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--png", type=Path, help="also draw the picture here")
    p.add_argument("--check", type=Path, help="fail unless this file contains the current table")
    a = p.parse_args(argv)
    g = module_graph(); table = markdown(g)
    if a.png: draw(g, a.png)
    if a.check:
        if table not in a.check.read_text():
            sys.exit(f"{a.check}: its module table is not what the imports say; rerun tools/module_graph.py and paste the table")
        return
    print(table)


if __name__ == "__main__":
    main()

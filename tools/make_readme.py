#!/usr/bin/env python
"""Render nbs/index.ipynb into README.md without Quarto (nbdev_readme needs Quarto, which cannot be installed here).

Markdown cells are copied, visible code cells become ```python blocks, text outputs become plain blocks and PNG
outputs are written to README_files/. `--check` exits 1 when README.md is out of date."""
import base64, json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def render(nb_path=ROOT / "nbs" / "index.ipynb", img_dir=ROOT / "README_files"):
    nb = json.loads(Path(nb_path).read_text())
    parts, images = [], {}
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "markdown":  # relative image links point into nbs/ from the repository root
            parts.append(re.sub(r"(!\[[^\]]*\]\()(?![a-z]+://|/)", r"\1nbs/", src.strip())); continue
        if cell["cell_type"] != "code" or any(l.strip() in ("#| hide", "#|hide") for l in src.splitlines()):
            continue
        body = "\n".join(l for l in src.splitlines() if not l.startswith("#|")).strip()
        if body: parts.append(f"```python\n{body}\n```")
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if out.get("output_type") == "stream": parts.append("```\n" + "".join(out["text"]).rstrip() + "\n```")
            elif "image/png" in data:
                name = f"fig-{len(images) + 1}.png"
                images[name] = base64.b64decode("".join(data["image/png"]))
                parts.append(f"![]({img_dir.name}/{name})")
            elif "text/markdown" in data: parts.append("".join(data["text/markdown"]).strip())
            elif "text/plain" in data: parts.append("```\n" + "".join(data["text/plain"]).rstrip() + "\n```")
    text = "<!-- Generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file. -->\n\n"
    return text + "\n\n".join(p for p in parts if p) + "\n", images


def main(argv=sys.argv[1:]):
    text, images = render()
    img_dir = ROOT / "README_files"
    if "--check" in argv:
        stale = (ROOT / "README.md").read_text() != text if (ROOT / "README.md").exists() else True
        stale |= any(not (img_dir / n).exists() or (img_dir / n).read_bytes() != b for n, b in images.items())
        if stale: print("README.md is out of date: run `python tools/make_readme.py`"); return 1
        return 0
    (ROOT / "README.md").write_text(text)
    if images or img_dir.exists():
        img_dir.mkdir(exist_ok=True)
        for old in img_dir.glob("fig-*.png"):
            if old.name not in images: old.unlink()
        for n, b in images.items(): (img_dir / n).write_bytes(b)
    print(f"wrote README.md ({len(images)} figures)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

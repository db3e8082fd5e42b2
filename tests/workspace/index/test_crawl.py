from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.workspace.repos import make_repo, write_files
from workspace.index.crawl import crawl
from workspace.index.languages import is_code, language_for


def paths(root: Path, **kwargs: object) -> list[str]:
    return [found.path for found in crawl(root, **kwargs)]  # type: ignore[arg-type]


def test_nested_gitignore_with_negation_and_precedence(tmp_path: Path) -> None:
    root = make_repo(
        tmp_path / "repo",
        {
            ".gitignore": "*.log\nbuild/\n/top-only.txt\n",
            "app.py": "x = 1\n",
            "debug.log": "noise\n",
            "top-only.txt": "ignored at the top\n",
            "build/out.py": "generated = True\n",
            "build/.gitignore": "!out.py\n",  # cannot re-include inside an ignored directory (git's rule)
            "sub/.gitignore": "!keep.log\n*.tmp\n",
            "sub/keep.log": "kept by the deeper negation\n",
            "sub/other.log": "still ignored by the root file\n",
            "sub/x.tmp": "ignored by the deeper file\n",
            "sub/top-only.txt": "the root pattern is anchored: kept\n",
            "x.tmp": "the deeper file does not apply here\n",
        },
    )
    assert paths(root) == [
        ".gitignore",
        "app.py",
        "sub/.gitignore",
        "sub/keep.log",
        "sub/top-only.txt",
        "x.tmp",
    ]


def test_git_info_exclude_and_git_dir_are_respected(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"a.py": "", "secret.txt": "local only\n"})
    (root / ".git" / "info").mkdir(exist_ok=True)
    (root / ".git" / "info" / "exclude").write_text("secret.txt\n")
    assert paths(root) == ["a.py"]


def test_default_skips_vendored_and_generated_trees(tmp_path: Path) -> None:
    write_files(
        tmp_path,
        {
            "src/main.js": "export const x = 1;\n",
            "node_modules/react/index.js": "module.exports = {};\n",
            "pkg/__pycache__/mod.cpython-311.pyc": b"\x00\x01",
            "env/pyvenv.cfg": "home = /usr/bin\n",  # a virtualenv, whatever its name
            "env/lib/site.py": "x = 1\n",
            "target/CACHEDIR.TAG": "Signature: 8a477f597d28d172789f06886806bc55\n",  # cargo's build dir
            "target/debug/build.rs": "fn main() {}\n",
            "static/app.min.js": "var a=1;\n",
            "build/keep.py": "# build/ is not skipped without a .gitignore saying so\n",
        },
    )
    assert paths(tmp_path) == ["build/keep.py", "src/main.js"]


def test_ignore_globs_binary_and_size_limit(tmp_path: Path) -> None:
    write_files(
        tmp_path,
        {
            "a.py": "print('hi')\n",
            "docs/guide.md": "# guide\n",
            "notes.md": "# notes\n",
            "image.dat": b"GIF89a\x00\x00binary",
            "late-nul.txt": b"a" * 9000 + b"\x00",  # NUL past the first 8 KB: treated as text, like git
            "big.py": "x = 1\n" * 400,
        },
    )
    found = paths(tmp_path, ignore_globs=["docs/", "notes.md"], max_bytes=1024)
    assert found == ["a.py"]
    found = paths(tmp_path, max_bytes=100_000)
    assert found == ["a.py", "big.py", "docs/guide.md", "late-nul.txt", "notes.md"]


def test_symlinks_outside_the_root_are_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write_files(outside, {"secret.py": "TOKEN = 'x'\n", "dir/inner.py": "y = 2\n"})
    root = tmp_path / "root"
    write_files(root, {"real.py": "z = 3\n", "pkg/mod.py": "w = 4\n"})
    os.symlink(outside / "secret.py", root / "leak.py")
    os.symlink(outside / "dir", root / "leakdir")
    os.symlink(root / "real.py", root / "alias.py")  # inside the root: indexed under its own name
    os.symlink(root / "pkg", root / "pkg-link")  # a directory link is never walked (no loops, no duplicates)
    os.symlink(root / "nowhere.py", root / "dangling.py")
    assert paths(root) == ["alias.py", "pkg/mod.py", "real.py"]


def test_crawled_files_carry_size_and_language(tmp_path: Path) -> None:
    write_files(tmp_path, {"lib/a.ts": "export {}\n", "Makefile": "all:\n", "x.unknownext": "?"})
    found = {item.path: item for item in crawl(tmp_path)}
    assert found["lib/a.ts"].size == len("export {}\n")
    assert found["lib/a.ts"].language == "typescript"
    assert found["Makefile"].language == "makefile"
    assert found["x.unknownext"].language == ""


@pytest.mark.parametrize(
    ("path", "language", "code"),
    [
        ("a/b.py", "python", True),
        ("x.pyi", "python", True),
        ("web/App.jsx", "javascript", True),
        ("web/App.tsx", "tsx", True),
        ("web/api.mts", "typescript", True),
        ("cmd/main.go", "go", True),
        ("src/lib.rs", "rust", True),
        ("Main.java", "java", True),
        ("Rakefile", "ruby", True),
        ("lib/x.rb", "ruby", True),
        ("native/x.h", "c", True),
        ("native/x.hpp", "cpp", True),
        ("App.kt", "kotlin", True),
        ("index.php", "php", True),
        ("init.lua", "lua", True),
        ("run.sh", "shell", True),
        ("Program.cs", "csharp", True),
        ("README.md", "markdown", False),
        ("package.json", "json", False),
        ("ci.yaml", "yaml", False),
        ("Cargo.toml", "toml", False),
        ("Dockerfile", "dockerfile", False),
        ("LICENSE", "", False),
    ],
)
def test_language_for(path: str, language: str, code: bool) -> None:
    assert language_for(path) == language
    assert is_code(language) is code

"""Import resolution against a set of workspace paths, per language."""

from __future__ import annotations

import pytest

from workspace.index.imports import Dependency, fileset_build, imports_resolve, module_resolve
from workspace.index.values import Import

PATHS = [
    # python: a package, a src/ layout, a namespace directory, scripts
    "pkg/__init__.py",
    "pkg/mod.py",
    "pkg/sub/__init__.py",
    "pkg/sub/deep.py",
    "pkg/views.py",
    "src/app/__init__.py",
    "src/app/core.py",
    "scripts/tool.py",
    "tests/test_mod.py",
    # js / ts
    "web/src/index.ts",
    "web/src/utils/date.ts",
    "web/src/components/Button.tsx",
    "web/src/components/index.ts",
    "web/src/legacy.js",
    "web/src/data.json",
    # go
    "go.mod",
    "cmd/server/main.go",
    "internal/db/conn.go",
    "internal/db/conn_test.go",
    "internal/db/a_helpers.go",
    # rust
    "Cargo.toml",
    "src/lib.rs",
    "src/config.rs",
    "src/net/mod.rs",
    "src/net/http.rs",
    "src/net/tcp.rs",
    # java
    "service/src/main/java/com/example/util/Helper.java",
    "service/src/main/java/com/example/App.java",
    # ruby
    "lib/shop/cart.rb",
    "app/models/order.rb",
    "app/models/support/money.rb",
    # c
    "native/include/list.h",
    "native/src/list.c",
]
FILES = fileset_build(
    PATHS, root_name="project", go_mods={"go.mod": "module example.com/shop // the shop\n\ngo 1.22\n"}
)


def resolve(path: str, language: str, module: str) -> str:
    return module_resolve(FILES, path=path, language=language, module=module)


@pytest.mark.parametrize(
    ("importer", "module", "target"),
    [
        ("scripts/tool.py", "pkg.mod", "pkg/mod.py"),
        ("scripts/tool.py", "pkg", "pkg/__init__.py"),
        ("scripts/tool.py", "pkg.sub.deep", "pkg/sub/deep.py"),
        ("scripts/tool.py", "app.core", "src/app/core.py"),  # src/ layout
        ("scripts/tool.py", "app", "src/app/__init__.py"),
        ("pkg/sub/deep.py", ".", "pkg/sub/__init__.py"),
        ("pkg/sub/deep.py", "..", "pkg/__init__.py"),
        ("pkg/sub/deep.py", "..mod", "pkg/mod.py"),
        ("pkg/sub/deep.py", "...", ""),  # above the root
        ("pkg/mod.py", ".views", "pkg/views.py"),
        ("tests/test_mod.py", "os.path", ""),
        ("tests/test_mod.py", "pkg.missing", ""),
    ],
)
def test_python(importer: str, module: str, target: str) -> None:
    assert resolve(importer, "python", module) == target


def test_python_from_import_of_submodules_and_names() -> None:
    deps = imports_resolve(
        FILES,
        path="pkg/mod.py",
        language="python",
        imports=[
            Import(".", ("views", "helper")),  # views is a module, helper a name in pkg/__init__.py
            Import("pkg.sub", ("deep",)),
            Import("pkg", ("mod",)),
            Import("requests", ("get",)),
            Import("pkg.sub", ("*",)),
        ],
    )
    assert deps == [
        Dependency(".views", "pkg/views.py"),
        Dependency(".", "pkg/__init__.py"),
        Dependency("pkg.sub.deep", "pkg/sub/deep.py"),
        Dependency("pkg.mod", "pkg/mod.py"),
        Dependency("requests", ""),
        Dependency("pkg.sub", "pkg/sub/__init__.py"),
    ]


def test_python_root_that_is_a_package_imports_under_its_own_name() -> None:
    files = fileset_build(
        ["__init__.py", "db/__init__.py", "db/models/__init__.py", "db/models/base.py"], root_name="django"
    )
    assert module_resolve(files, path="db/models/__init__.py", language="python", module="django.db.models.base") == (
        "db/models/base.py"
    )
    assert module_resolve(files, path="db/__init__.py", language="python", module="django") == "__init__.py"


@pytest.mark.parametrize(
    ("importer", "module", "target"),
    [
        ("web/src/index.ts", "./utils/date", "web/src/utils/date.ts"),
        ("web/src/index.ts", "./utils/date.js", "web/src/utils/date.ts"),  # TS's .js -> .ts substitution
        ("web/src/index.ts", "./components/Button", "web/src/components/Button.tsx"),
        ("web/src/index.ts", "./components", "web/src/components/index.ts"),
        ("web/src/components/Button.tsx", "../legacy", "web/src/legacy.js"),
        ("web/src/components/Button.tsx", "../data.json", "web/src/data.json"),
        ("web/src/index.ts", "react", ""),
        ("web/src/index.ts", "@/utils/date", ""),
        ("web/src/index.ts", "../../../../outside", ""),
    ],
)
def test_javascript_and_typescript(importer: str, module: str, target: str) -> None:
    assert resolve(importer, "typescript", module) == target


def test_go_package_import_targets_its_first_non_test_file() -> None:
    assert resolve("cmd/server/main.go", "go", "example.com/shop/internal/db") == "internal/db/a_helpers.go"
    assert resolve("cmd/server/main.go", "go", "example.com/shop/internal/missing") == ""
    assert resolve("cmd/server/main.go", "go", "fmt") == ""
    assert resolve("cmd/server/main.go", "go", "example.com/shopping/x") == ""


@pytest.mark.parametrize(
    ("importer", "module", "target"),
    [
        ("src/lib.rs", "mod config", "src/config.rs"),
        ("src/lib.rs", "mod net", "src/net/mod.rs"),
        ("src/net/mod.rs", "mod http", "src/net/http.rs"),
        ("src/net/http.rs", "super::tcp", "src/net/tcp.rs"),
        ("src/net/http.rs", "crate::config::Config", "src/config.rs"),
        ("src/net/http.rs", "crate::net::tcp::connect", "src/net/tcp.rs"),
        ("src/net/http.rs", "self::x", ""),
        ("src/lib.rs", "std::collections::HashMap", ""),
        ("src/lib.rs", "net::http", "src/net/http.rs"),  # 2018-edition relative path
    ],
)
def test_rust(importer: str, module: str, target: str) -> None:
    assert resolve(importer, "rust", module) == target


def test_rust_use_list_names_submodules() -> None:
    deps = imports_resolve(
        FILES, path="src/lib.rs", language="rust", imports=[Import("crate::net", ("http", "Client"))]
    )
    assert deps == [Dependency("crate::net::http", "src/net/http.rs"), Dependency("crate::net", "src/net/mod.rs")]


def test_java_ruby_and_c() -> None:
    app = "service/src/main/java/com/example/App.java"
    assert resolve(app, "java", "com.example.util.Helper") == "service/src/main/java/com/example/util/Helper.java"
    assert resolve(app, "java", "com.example.util.Helper.assist") == (
        "service/src/main/java/com/example/util/Helper.java"
    )  # a static import of a member
    assert resolve(app, "java", "com.example.util.*") == ""
    assert resolve(app, "java", "java.util.List") == ""
    assert resolve("app/models/order.rb", "ruby", "./support/money") == "app/models/support/money.rb"
    assert resolve("app/models/order.rb", "ruby", "shop/cart") == "lib/shop/cart.rb"
    assert resolve("app/models/order.rb", "ruby", "json") == ""
    assert resolve("native/src/list.c", "c", "../include/list.h") == "native/include/list.h"
    assert resolve("native/src/list.c", "c", "stdio.h") == ""


def test_unknown_language_never_resolves() -> None:
    assert resolve("README.md", "markdown", "./x") == ""
    assert resolve("x.lua", "lua", "pkg.mod") == ""


def test_nul_never_reaches_a_module_string() -> None:
    [dependency] = imports_resolve(FILES, path="web/src/index.ts", language="typescript", imports=[Import("./a\x00b")])
    assert dependency == Dependency("./ab", "")

"""Project signals from manifests and config files: dependencies, frameworks, lint tools; malformed = nothing."""

from __future__ import annotations

import logging

import pytest

from workspace.index.signals import Signal, signals_for


def of(path: str, text: str) -> set[tuple[str, str, str, str, bool]]:
    return {(s.kind, s.ecosystem, s.name, s.version, s.dev) for s in signals_for(path, text.encode())}


def names(path: str, text: str, kind: str) -> set[str]:
    return {s.name for s in signals_for(path, text.encode()) if s.kind == kind}


def test_package_json() -> None:
    found = of(
        "web/package.json",
        """{
          "name": "web", "version": "1.0.0",
          "dependencies": {"react": "^18.2.0", "next": "14.1.0", "@nestjs/core": "10.0.0"},
          "devDependencies": {"vitest": "^1.0.0", "typescript": "5.4.0"},
          "eslintConfig": {"extends": "next"}
        }""",
    )
    assert {
        ("manifest", "npm", "npm", "", False),
        ("dependency", "npm", "react", "^18.2.0", False),
        ("dependency", "npm", "typescript", "5.4.0", True),
        ("framework", "npm", "react", "^18.2.0", False),
        ("framework", "npm", "next", "14.1.0", False),
        ("framework", "npm", "nestjs", "10.0.0", False),
        ("framework", "npm", "vitest", "^1.0.0", True),
        ("lint", "", "eslint", "", False),
    } <= found
    assert len(found) == 11


def test_pyproject_pep621_poetry_and_tool_sections() -> None:
    found = of(
        "pyproject.toml",
        """
[project]
name = "shop"
dependencies = ["Django>=5.0,<6", "celery[redis]==5.4.0 ; python_version >= '3.11'", "requests"]

[project.optional-dependencies]
test = ["pytest>=8"]
postgres = ["psycopg[binary]"]

[dependency-groups]
lint = ["ruff==0.5.0"]

[tool.poetry.dependencies]
python = "^3.11"
fastapi = {version = "^0.110", extras = ["all"]}

[tool.ruff]
line-length = 120

[tool.mypy]
strict = true
""",
    )
    assert {
        ("manifest", "pypi", "pypi", "", False),
        ("dependency", "pypi", "Django", ">=5.0,<6", False),
        ("dependency", "pypi", "celery", "==5.4.0", False),
        ("dependency", "pypi", "requests", "", False),
        ("dependency", "pypi", "pytest", ">=8", True),
        ("dependency", "pypi", "psycopg", "", False),
        ("dependency", "pypi", "ruff", "==0.5.0", True),
        ("dependency", "pypi", "fastapi", "^0.110", False),
        ("framework", "pypi", "django", ">=5.0,<6", False),
        ("framework", "pypi", "celery", "==5.4.0", False),
        ("framework", "pypi", "pytest", ">=8", True),
        ("framework", "pypi", "fastapi", "^0.110", False),
        ("lint", "", "ruff", "", False),
        ("lint", "", "mypy", "", False),
    } == found


def test_requirements_files() -> None:
    text = (
        "# pinned\nFlask==3.0.0  # web\n-r base.txt\n-e git+https://x/y.git#egg=z\n"
        "gunicorn>=21 ; sys_platform != 'win32'\n"
    )
    assert of("requirements.txt", text) == {
        ("manifest", "pypi", "pypi", "", False),
        ("dependency", "pypi", "Flask", "==3.0.0", False),
        ("dependency", "pypi", "gunicorn", ">=21", False),
        ("framework", "pypi", "flask", "==3.0.0", False),
    }
    assert ("dependency", "pypi", "pytest", "", True) in of("requirements-dev.txt", "pytest\n")
    assert ("dependency", "pypi", "pytest", "", True) in of("requirements/test.txt", "pytest\n")
    assert of("docs/notes.txt", "Flask==3.0.0\n") == set()


def test_go_mod() -> None:
    found = of(
        "go.mod",
        "module example.com/api\n\ngo 1.22\n\nrequire github.com/gin-gonic/gin v1.9.1\n\nrequire (\n"
        "\tgithub.com/stretchr/testify v1.9.0 // indirect\n\tgolang.org/x/sync v0.7.0\n)\n",
    )
    assert found == {
        ("manifest", "go", "go", "", False),
        ("dependency", "go", "github.com/gin-gonic/gin", "v1.9.1", False),
        ("dependency", "go", "github.com/stretchr/testify", "v1.9.0", False),
        ("dependency", "go", "golang.org/x/sync", "v0.7.0", False),
        ("framework", "go", "gin", "v1.9.1", False),
        ("framework", "go", "testify", "v1.9.0", False),
    }


def test_cargo_toml() -> None:
    found = of(
        "Cargo.toml",
        '[package]\nname = "svc"\n\n[dependencies]\ntokio = { version = "1", features = ["full"] }\n'
        'web = { package = "actix-web", version = "4" }\nserde = "1.0"\n\n[dev-dependencies]\nproptest = "1"\n',
    )
    assert found == {
        ("manifest", "cargo", "cargo", "", False),
        ("dependency", "cargo", "tokio", "1", False),
        ("dependency", "cargo", "actix-web", "4", False),  # renamed: the real package counts
        ("dependency", "cargo", "serde", "1.0", False),
        ("dependency", "cargo", "proptest", "1", True),
        ("framework", "cargo", "tokio", "1", False),
        ("framework", "cargo", "actix-web", "4", False),
    }


POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <parent>
    <groupId>org.springframework.boot</groupId>
    <artifactId>spring-boot-starter-parent</artifactId>
    <version>3.2.0</version>
  </parent>
  <dependencies>
    <dependency><groupId>org.springframework.boot</groupId><artifactId>spring-boot-starter-web</artifactId></dependency>
    <dependency>
      <groupId>org.junit.jupiter</groupId><artifactId>junit-jupiter</artifactId><version>5.10.0</version>
      <scope>test</scope>
    </dependency>
  </dependencies>
</project>
"""


def test_pom_xml() -> None:
    found = of("pom.xml", POM)
    assert found == {
        ("manifest", "maven", "maven", "", False),
        ("dependency", "maven", "org.springframework.boot:spring-boot-starter-parent", "3.2.0", False),
        ("dependency", "maven", "org.springframework.boot:spring-boot-starter-web", "", False),
        ("dependency", "maven", "org.junit.jupiter:junit-jupiter", "5.10.0", True),
        ("framework", "maven", "spring-boot", "3.2.0", False),
        ("framework", "maven", "junit", "5.10.0", True),
    }


def test_pom_with_a_doctype_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    bomb = '<?xml version="1.0"?>\n<!DOCTYPE p [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>\n<project>&b;</project>'
    with caplog.at_level(logging.DEBUG, logger="workspace.index.signals"):
        assert signals_for("pom.xml", bomb.encode()) == []
    assert "malformed manifest pom.xml" in caplog.text


def test_gradle_groovy_and_kotlin_dsl() -> None:
    groovy = """
plugins { id 'org.springframework.boot' version '3.2.0' }
dependencies {
    implementation 'org.springframework.boot:spring-boot-starter-web'
    implementation platform('org.springframework.cloud:spring-cloud-dependencies:2023.0.0')
    testImplementation "org.junit.jupiter:junit-jupiter:5.10.0"
}
"""
    assert of("build.gradle", groovy) == {
        ("manifest", "gradle", "gradle", "", False),
        ("dependency", "gradle", "org.springframework.boot:spring-boot-starter-web", "", False),
        ("dependency", "gradle", "org.springframework.cloud:spring-cloud-dependencies", "2023.0.0", False),
        ("dependency", "gradle", "org.junit.jupiter:junit-jupiter", "5.10.0", True),
        ("framework", "gradle", "spring-boot", "", False),
        ("framework", "gradle", "spring", "2023.0.0", False),
        ("framework", "gradle", "junit", "5.10.0", True),
    }
    kotlin = 'dependencies {\n    implementation("io.ktor:ktor-server-core:2.3.7")\n}\n'
    assert ("framework", "gradle", "ktor", "2.3.7", False) in of("build.gradle.kts", kotlin)


def test_gemfile_groups() -> None:
    gemfile = """
source "https://rubygems.org"
gem "rails", "~> 7.1"
gem 'puma'
group :development, :test do
  gem "rspec-rails"
  gem "debug", platforms: %i[mri]
end
gem "rubocop", require: false, group: :development
gem "sidekiq"
"""
    assert of("Gemfile", gemfile) == {
        ("manifest", "gem", "gem", "", False),
        ("dependency", "gem", "rails", "~> 7.1", False),
        ("dependency", "gem", "puma", "", False),
        ("dependency", "gem", "rspec-rails", "", True),
        ("dependency", "gem", "debug", "", True),
        ("dependency", "gem", "rubocop", "", True),
        ("dependency", "gem", "sidekiq", "", False),
        ("framework", "gem", "rails", "~> 7.1", False),
        ("framework", "gem", "rspec", "", True),
        ("framework", "gem", "sidekiq", "", False),
    }


def test_composer_json_skips_the_platform() -> None:
    text = (
        '{"require": {"php": "^8.2", "ext-json": "*", "laravel/framework": "^11.0"}, '
        '"require-dev": {"phpunit/phpunit": "^11"}}'
    )
    assert of("composer.json", text) == {
        ("manifest", "composer", "composer", "", False),
        ("dependency", "composer", "laravel/framework", "^11.0", False),
        ("dependency", "composer", "phpunit/phpunit", "^11", True),
        ("framework", "composer", "laravel", "^11.0", False),
        ("framework", "composer", "phpunit", "^11", True),
    }


@pytest.mark.parametrize(
    ("path", "tool"),
    [
        (".eslintrc.json", "eslint"),
        ("eslint.config.mjs", "eslint"),
        (".prettierrc", "prettier"),
        ("prettier.config.js", "prettier"),
        ("ruff.toml", "ruff"),
        (".ruff.toml", "ruff"),
        (".flake8", "flake8"),
        ("mypy.ini", "mypy"),
        (".editorconfig", "editorconfig"),
        (".rubocop.yml", "rubocop"),
        (".golangci.yml", "golangci-lint"),
        ("rustfmt.toml", "rustfmt"),
        ("clippy.toml", "clippy"),
        ("config/checkstyle.xml", "checkstyle"),
        ("biome.json", "biome"),
        (".stylelintrc.json", "stylelint"),
    ],
)
def test_lint_config_files_by_name(path: str, tool: str) -> None:
    assert signals_for(path, b"anything") == [Signal("lint", "", tool)]


def test_setup_cfg_and_tsconfig() -> None:
    assert names(
        "setup.cfg", "[metadata]\nname = x\n[flake8]\nmax-line-length = 100\n[mypy-foo.*]\nx = 1\n", "lint"
    ) == {
        "flake8",
        "mypy",
    }
    strict = '{\n  // comments are allowed\n  "compilerOptions": {"strict": true, "paths": {"@/*": ["src/*"]},},\n}\n'
    assert signals_for("tsconfig.json", strict.encode()) == [Signal("lint", "", "tsconfig", "strict")]
    assert signals_for("tsconfig.build.json", b'{"compilerOptions": {}}') == [Signal("lint", "", "tsconfig", "")]


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("package.json", "{not json"),
        ("package.json", "[1, 2]"),
        ("pyproject.toml", "[project\nname ="),
        ("Cargo.toml", "= broken"),
        ("pom.xml", "<project><dependencies></project>"),
        ("composer.json", ""),
        ("tsconfig.json", "{"),
        ("setup.cfg", "no section header\n"),
        ("Pipfile", "[packages"),
    ],
)
def test_malformed_manifests_give_nothing(path: str, text: str) -> None:
    assert signals_for(path, text.encode()) == []


def test_unrelated_files_give_nothing() -> None:
    assert signals_for("src/app.py", b"import django\n") == []
    assert signals_for("README.md", b"# react\n") == []

"""The heuristic extractor: common definition forms of languages without a grammar, and never a crash."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from workspace.index.extract import extract
from workspace.index.heuristic import extract_heuristic, heuristic_extract_text
from workspace.index.languages import HEURISTIC_LANGUAGES
from workspace.index.values import Extraction

LUA = """\
local json = require("cjson")
local M = {}

function M.encode(value)
  return json.encode(value)
end

local function helper(x)
  return x * 2
end

M.decode = function(text)
  return helper(json.decode(text))
end

return M
"""

KOTLIN = """\
package com.example.app

import kotlinx.coroutines.launch

data class User(val id: Long, val name: String)

interface UserRepository {
    fun find(id: Long): User?
}

class InMemoryRepository : UserRepository {
    private val users = mutableMapOf<Long, User>()

    override fun find(id: Long): User? = users[id]

    suspend fun refresh() {
        launch { reload() }
    }
}

object Registry {
    fun default(): UserRepository = InMemoryRepository()
}

fun String.slugify(): String = lowercase().replace(" ", "-")
"""

PHP = r"""<?php
namespace App\Http;

use App\Models\User;
require_once 'helpers.php';

interface Handler {
    public function handle(Request $request): Response;
}

final class UserController implements Handler
{
    public function handle(Request $request): Response
    {
        $user = User::find($request->id);
        return view('user', ['user' => $user]);
    }

    private static function log(string $message): void {}
}

function helper($x) { return $x; }
"""

C = """\
#include <stdio.h>
#include "util/list.h"

struct node {
    int value;
};

static int counter = 0;

int add(int a, int b) {
    return a + b;
}

static struct node *
make_node(int value)
{
    struct node *n = malloc(sizeof(struct node));
    if (n != NULL) {
        n->value = add(value, 0);
    }
    return n;
}

int main(void)
{
    printf("%d\\n", add(1, 2));
    return 0;
}
"""

SHELL = """\
#!/bin/sh
source ./lib/common.sh

log() {
  echo "$@" >&2
}

function deploy {
  log "deploying"
  build_image
}

deploy
"""


def defs(result: Extraction) -> list[tuple[str, str, int, int, str]]:
    return [(d.name, d.kind, d.line, d.end_line, d.container) for d in result.definitions]


def test_lua_functions_and_their_tables() -> None:
    result = extract(LUA.encode(), "lua")
    assert result.parser == "heuristic"
    assert defs(result) == [
        ("encode", "function", 4, 6, "M"),
        ("helper", "function", 8, 10, ""),
        ("decode", "function", 12, 16, "M"),
    ]
    assert [(i.module, i.line) for i in result.imports] == [("cjson", 1)]
    assert ("helper", "call", 13) in {(r.name, r.kind, r.line) for r in result.references}


def test_kotlin_classes_methods_and_extension_functions() -> None:
    result = extract(KOTLIN.encode(), "kotlin")
    assert defs(result) == [
        ("User", "class", 5, 5, ""),
        ("UserRepository", "interface", 7, 9, ""),
        ("find", "method", 8, 9, "UserRepository"),
        ("InMemoryRepository", "class", 11, 19, ""),
        ("find", "method", 14, 14, "InMemoryRepository"),
        ("refresh", "method", 16, 19, "InMemoryRepository"),
        ("Registry", "class", 21, 23, ""),
        ("default", "method", 22, 23, "Registry"),
        ("slugify", "function", 25, 25, "String"),
    ]
    assert [i.module for i in result.imports] == ["kotlinx.coroutines.launch"]


def test_php_functions_in_classes_but_not_closures() -> None:
    source = PHP + "$f = function ($x) use ($y) { return $x; };\n"
    result = extract(source.encode(), "php")
    assert defs(result) == [
        ("Handler", "interface", 7, 9, ""),
        ("handle", "method", 8, 9, "Handler"),
        ("UserController", "class", 11, 20, ""),
        ("handle", "method", 13, 17, "UserController"),
        ("log", "method", 19, 20, "UserController"),
        ("helper", "function", 22, 23, ""),  # an estimate: up to the next definition at its indentation
    ]
    assert [i.module for i in result.imports] == ["App\\Models\\User", "helpers.php"]


def test_c_definitions_but_not_declarations_or_struct_uses() -> None:
    result = extract(C.encode(), "c")
    assert [(d.name, d.kind, d.line) for d in result.definitions] == [
        ("node", "struct", 4),
        ("add", "function", 10),
        ("make_node", "function", 15),  # return type on the line above (GNU style)
        ("main", "function", 24),
    ]
    assert [i.module for i in result.imports] == ["stdio.h", "util/list.h"]
    calls = {(r.name, r.line) for r in result.references}
    assert {("malloc", 17), ("add", 19), ("printf", 26)} <= calls
    assert not any(name in ("if", "sizeof") for name, _ in calls)


def test_shell_functions() -> None:
    result = extract(SHELL.encode(), "shell")
    assert defs(result) == [("log", "function", 4, 6, ""), ("deploy", "function", 8, 13, "")]
    assert [i.module for i in result.imports] == ["./lib/common.sh"]


def test_other_common_forms() -> None:
    samples = {
        "elixir": ("defmodule Shop.Cart do\n  def add(cart, item) do\n    cart\n  end\nend\n", ["Cart", "add"]),
        "perl": ("package Shop::Cart;\nsub add {\n  my ($self) = @_;\n}\n", ["Cart", "add"]),
        "swift": ("struct Point: Codable {\n    func length() -> Double { 0 }\n}\n", ["Point", "length"]),
        "scala": ("object Main extends App {\n  def run(): Unit = ()\n}\n", ["Main", "run"]),
        "csharp": (
            "public class Greeter {\n    public string Greet(string name) {\n        return name;\n    }\n}\n",
            ["Greeter", "Greet"],
        ),
        "haskell": ("data Shape = Circle Double\narea :: Shape -> Double\narea (Circle r) = r\n", ["Shape", "area"]),
        "r": ("normalise <- function(x) {\n  x / sum(x)\n}\n", ["normalise"]),
    }
    for language, (source, names) in samples.items():
        assert [d.name for d in extract(source.encode(), language).definitions] == names, language


def test_long_generated_lines_are_skipped() -> None:
    result = heuristic_extract_text("function " + "a" * 5000 + "() {}\nfunction ok() {}\n", "php")
    assert [d.name for d in result.definitions] == ["ok"]


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=3000), language=st.sampled_from(sorted(HEURISTIC_LANGUAGES)))
def test_arbitrary_text_never_crashes(text: str, language: str) -> None:
    result = heuristic_extract_text(text, language)  # the unguarded core: a bug here fails this test
    line_count = max(1, len(text.splitlines()))
    assert all(1 <= d.line <= d.end_line <= line_count for d in result.definitions)


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(
        st.sampled_from(
            [
                "class A {",
                "  def b(x):",
                "struct s *",
                "f(int a)",
                "}",
                "",
                "\t",
                "function M.x:y()",
                "fn z<T>() {",
                "  (defn q",
                "end",
                "static int",
                "main(void)",
                "sub p {",
                "object O : B",
                "x() {",
                "func (r T) M()",
            ]
        )
        | st.text(max_size=40),
        max_size=60,
    ),
    language=st.sampled_from(sorted(HEURISTIC_LANGUAGES)),
)
def test_definition_like_soup_never_crashes(lines: list[str], language: str) -> None:
    text = "\n".join(lines)
    result = heuristic_extract_text(text, language)
    assert all(d.name for d in result.definitions)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=3000))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    assert extract_heuristic(data, "c").parser == "heuristic"

"""Tree-sitter extraction, one realistic file per language: exact definitions, and the references and imports
that matter for goto-definition and the dependency graph."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workspace.index.extract import extract
from workspace.index.values import Extraction

PYTHON = '''\
"""Orders."""
from __future__ import annotations

import logging
from decimal import Decimal
from .models import Order, LineItem as Item
from ..billing import invoice

MAX_ITEMS = 50
logger = logging.getLogger(__name__)


class OrderService(BaseService):
    retries = 3

    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    @staticmethod
    def total(items: list[Item]) -> Decimal:
        return sum((item.price for item in items), Decimal(0))

    async def place(self, order: Order) -> Order:
        def audit(message):
            logger.info(message)

        audit("placing")
        invoice.send(order)
        return self.repo.save(order)


def create_service() -> OrderService:
    return OrderService(repo=Repository())
'''


JAVASCRIPT = """\
import express from 'express';
import { formatDate, parse as parseDate } from './utils/date.js';
const config = require('../config');

export const PORT = 8080;
let server;

export class Router extends BaseRouter {
  constructor(app) {
    super(app);
    this.routes = [];
  }

  register(path, handler) {
    this.routes.push({ path, handler: wrap(handler) });
  }
}

export function start(port = PORT) {
  const app = express();
  server = app.listen(port);
  return new Router(app);
}

const wrap = (fn) => async (req, res) => fn(req, res, formatDate(new Date()));
"""


TYPESCRIPT = """\
import { Injectable } from '@angular/core';
import type { User } from './models/user';

export interface Repository<T> {
  find(id: string): Promise<T | undefined>;
}

export type UserId = string;

export enum Role {
  Admin,
  Member,
}

@Injectable()
export class UserService implements Repository<User> {
  private cache = new Map<UserId, User>();

  async find(id: UserId): Promise<User | undefined> {
    return this.cache.get(id) ?? fetchUser(id);
  }
}

export function isAdmin(user: User): boolean {
  return user.role === Role.Admin;
}
"""


TSX = """\
import React, { useState } from 'react';
import { Button } from './Button';

type Props = { initial: number };

export function Counter({ initial }: Props) {
  const [count, setCount] = useState(initial);
  return <div className="counter"><Button onClick={() => setCount(count + 1)}>{count}</Button></div>;
}

export const Empty = () => <span />;
"""


GO = """\
package store

import (
	"context"
	"errors"

	"example.com/shop/internal/db"
)

const DefaultLimit = 20

var ErrNotFound = errors.New("not found")

type Item struct {
	ID    string
	Price int
}

type Store interface {
	Get(ctx context.Context, id string) (*Item, error)
}

type memory struct {
	items map[string]*Item
}

func (m *memory) Get(ctx context.Context, id string) (*Item, error) {
	item, ok := m.items[id]
	if !ok {
		return nil, ErrNotFound
	}
	return item, nil
}

func New(conn *db.Conn) Store {
	return &memory{items: db.Load(conn)}
}
"""


RUST = """\
use std::collections::HashMap;
use crate::config::{Config, Mode};

mod cache;

pub const VERSION: &str = "1.0";

pub trait Shape {
    fn area(&self) -> f64;
}

#[derive(Debug)]
pub struct Circle {
    radius: f64,
}

impl Shape for Circle {
    fn area(&self) -> f64 {
        std::f64::consts::PI * square(self.radius)
    }
}

impl Circle {
    pub fn new(radius: f64) -> Self {
        Circle { radius }
    }
}

pub enum Event {
    Click { x: i32, y: i32 },
}

fn square(x: f64) -> f64 {
    x * x
}

pub fn registry(config: &Config) -> HashMap<String, Circle> {
    let mut shapes = HashMap::new();
    shapes.insert("unit".to_string(), Circle::new(1.0));
    println!("{:?}", config);
    shapes
}
"""


JAVA = """\
package com.example.shop;

import com.example.shop.model.Order;
import java.util.List;
import static java.util.Objects.requireNonNull;

public class OrderController extends BaseController implements Handler {
    private static final int PAGE_SIZE = 25;
    private final OrderRepository repository;

    public OrderController(OrderRepository repository) {
        this.repository = requireNonNull(repository);
    }

    @Override
    public List<Order> list(int page) {
        return repository.findAll(page * PAGE_SIZE, PAGE_SIZE);
    }

    public enum Status { OPEN, CLOSED }

    interface Listener {
        void onOrder(Order order);
    }
}
"""


RUBY = """\
require 'json'
require_relative 'support/money'

module Billing
  class Invoice < Document
    include Comparable
    TAX_RATE = 0.2

    attr_reader :lines

    def initialize(lines)
      @lines = lines
    end

    def total
      lines.sum(&:amount) * (1 + TAX_RATE)
    end

    def self.from_json(text)
      new(JSON.parse(text))
    end
  end
end
"""


def defs(result: Extraction) -> list[tuple[str, str, int, int, int, str]]:
    return [(d.name, d.kind, d.line, d.column, d.end_line, d.container) for d in result.definitions]


def refs(result: Extraction) -> set[tuple[str, str, int]]:
    return {(r.name, r.kind, r.line) for r in result.references}


def imports(result: Extraction) -> list[tuple[str, tuple[str, ...]]]:
    return [(i.module, i.names) for i in result.imports]


def test_python() -> None:
    result = extract(PYTHON.encode(), "python")
    assert result.parser == "tree-sitter"
    assert defs(result) == [
        ("MAX_ITEMS", "constant", 9, 0, 9, ""),
        ("logger", "variable", 10, 0, 10, ""),
        ("OrderService", "class", 13, 6, 29, ""),
        ("retries", "variable", 14, 4, 14, "OrderService"),
        ("__init__", "method", 16, 8, 17, "OrderService"),
        ("total", "method", 20, 8, 21, "OrderService"),
        ("place", "method", 23, 14, 29, "OrderService"),
        ("audit", "function", 24, 12, 25, "OrderService"),  # nested in a method: a function, still in the class
        ("create_service", "function", 32, 4, 33, ""),
    ]
    assert {
        ("BaseService", "type", 13),
        ("Repository", "type", 16),
        ("staticmethod", "reference", 19),
        ("audit", "call", 27),
        ("send", "call", 28),
        ("OrderService", "call", 33),
        ("LineItem", "import", 6),  # the imported name, not the alias
    } <= refs(result)
    assert ("Decimal", "import", 5) in refs(result)
    assert not any(name in ("int", "list", "str") for name, _, _ in refs(result))  # builtins are not stored
    assert imports(result) == [
        ("logging", ()),  # __future__ imports are not dependencies
        ("decimal", ("Decimal",)),
        (".models", ("Order", "LineItem")),
        ("..billing", ("invoice",)),
    ]


def test_javascript() -> None:
    result = extract(JAVASCRIPT.encode(), "javascript")
    assert defs(result) == [
        ("config", "variable", 3, 6, 3, ""),
        ("PORT", "constant", 5, 13, 5, ""),
        ("server", "variable", 6, 4, 6, ""),
        ("Router", "class", 8, 13, 17, ""),
        ("constructor", "method", 9, 2, 12, "Router"),
        ("register", "method", 14, 2, 16, "Router"),
        ("start", "function", 19, 16, 23, ""),
        ("wrap", "function", 25, 6, 25, ""),  # an arrow function bound to a const is a function
    ]
    assert {
        ("BaseRouter", "type", 8),
        ("wrap", "call", 15),
        ("Router", "call", 22),
        ("formatDate", "import", 2),
        ("formatDate", "call", 25),
    } <= refs(result)
    assert imports(result) == [("express", ()), ("./utils/date.js", ()), ("../config", ())]


def test_typescript() -> None:
    result = extract(TYPESCRIPT.encode(), "typescript")
    assert defs(result) == [
        ("Repository", "interface", 4, 17, 6, ""),
        ("find", "method", 5, 2, 5, "Repository"),
        ("UserId", "type", 8, 12, 8, ""),
        ("Role", "enum", 10, 12, 13, ""),
        ("UserService", "class", 16, 13, 22, ""),
        ("cache", "variable", 17, 10, 17, "UserService"),
        ("find", "method", 19, 8, 21, "UserService"),
        ("isAdmin", "function", 24, 16, 26, ""),
    ]
    assert {
        ("Injectable", "call", 15),
        ("Repository", "type", 16),
        ("UserId", "type", 19),
        ("fetchUser", "call", 20),
        ("User", "import", 2),
    } <= refs(result)
    # a definition's own name is not a reference to it
    assert ("UserService", "type", 16) not in refs(result)
    assert imports(result) == [("@angular/core", ()), ("./models/user", ())]


def test_tsx_components_are_references_and_html_tags_are_not() -> None:
    result = extract(TSX.encode(), "tsx")
    assert defs(result) == [
        ("Props", "type", 4, 5, 4, ""),
        ("Counter", "function", 6, 16, 9, ""),
        ("Empty", "function", 11, 13, 11, ""),
    ]
    found = refs(result)
    assert ("Button", "call", 8) in found
    assert ("Props", "type", 6) in found
    assert not any(name in ("div", "span") for name, _, _ in found)
    assert imports(result) == [("react", ()), ("./Button", ())]


def test_go() -> None:
    result = extract(GO.encode(), "go")
    assert defs(result) == [
        ("DefaultLimit", "constant", 10, 6, 10, ""),
        ("ErrNotFound", "variable", 12, 4, 12, ""),
        ("Item", "struct", 14, 5, 17, ""),
        ("Store", "interface", 19, 5, 21, ""),
        ("Get", "method", 20, 1, 20, "Store"),
        ("memory", "struct", 23, 5, 25, ""),
        ("Get", "method", 27, 17, 33, "memory"),  # the receiver type is the container
        ("New", "function", 35, 5, 37, ""),
    ]
    found = refs(result)
    assert {("Load", "call", 36), ("Conn", "type", 35), ("Item", "type", 20), ("New", "call", 12)} <= found
    assert not any(name in ("string", "int", "error") for name, _, _ in found)
    assert imports(result) == [("context", ()), ("errors", ()), ("example.com/shop/internal/db", ())]


def test_rust() -> None:
    result = extract(RUST.encode(), "rust")
    assert defs(result) == [
        ("cache", "module", 4, 4, 4, ""),
        ("VERSION", "constant", 6, 10, 6, ""),
        ("Shape", "trait", 8, 10, 10, ""),
        ("area", "method", 9, 7, 9, "Shape"),
        ("Circle", "struct", 13, 11, 15, ""),
        ("area", "method", 18, 7, 20, "Circle"),  # in `impl Shape for Circle`: the implementing type
        ("new", "method", 24, 11, 26, "Circle"),
        ("Event", "enum", 29, 9, 31, ""),
        ("square", "function", 33, 3, 35, ""),
        ("registry", "function", 37, 7, 42, ""),
    ]
    assert {("square", "call", 19), ("Circle", "type", 17), ("println", "call", 40), ("Config", "import", 2)} <= refs(
        result
    )
    assert imports(result) == [
        ("std::collections::HashMap", ()),
        ("crate::config", ("Config", "Mode")),
        ("mod cache", ()),
    ]


def test_java() -> None:
    result = extract(JAVA.encode(), "java")
    assert defs(result) == [
        ("OrderController", "class", 7, 13, 25, ""),
        ("PAGE_SIZE", "constant", 8, 29, 8, "OrderController"),
        ("repository", "variable", 9, 34, 9, "OrderController"),
        ("OrderController", "method", 11, 11, 13, "OrderController"),
        ("list", "method", 16, 23, 18, "OrderController"),
        ("Status", "enum", 20, 16, 20, "OrderController"),
        ("OPEN", "constant", 20, 25, 20, "Status"),
        ("CLOSED", "constant", 20, 31, 20, "Status"),
        ("Listener", "interface", 22, 14, 24, "OrderController"),
        ("onOrder", "method", 23, 13, 23, "Listener"),
    ]
    assert {
        ("BaseController", "type", 7),
        ("requireNonNull", "call", 12),
        ("findAll", "call", 17),
        ("Override", "reference", 15),
        ("Order", "import", 3),
    } <= refs(result)
    assert imports(result) == [
        ("com.example.shop.model.Order", ()),
        ("java.util.List", ()),
        ("java.util.Objects.requireNonNull", ()),  # `static` is not part of the module
    ]


def test_ruby() -> None:
    result = extract(RUBY.encode(), "ruby")
    assert defs(result) == [
        ("Billing", "module", 4, 7, 23, ""),
        ("Invoice", "class", 5, 8, 22, "Billing"),
        ("TAX_RATE", "constant", 7, 4, 7, "Invoice"),
        ("lines", "method", 9, 16, 9, "Invoice"),  # attr_reader defines a reader method
        ("initialize", "method", 11, 8, 13, "Invoice"),
        ("total", "method", 15, 8, 17, "Invoice"),
        ("from_json", "method", 19, 13, 21, "Invoice"),
    ]
    assert {
        ("Document", "type", 5),
        ("Comparable", "type", 6),
        ("parse", "call", 20),
        ("JSON", "reference", 20),
    } <= refs(result)
    assert imports(result) == [("json", ()), ("./support/money", ())]  # require_relative is relative to the file


def test_documents_have_no_parser() -> None:
    assert extract(b"# Title\n\ndef not_code():\n", "markdown") == Extraction(parser="none")
    assert extract(b"{}", "") == Extraction(parser="none")


def test_broken_source_still_yields_what_parses() -> None:
    result = extract(b"def ok():\n    pass\n\ndef broken(:\n    return (\n\nclass Fine:\n    pass\n", "python")
    assert result.parser == "tree-sitter"
    assert {"ok", "Fine"} <= {d.name for d in result.definitions}


def test_grammar_failure_falls_back_to_the_heuristic(monkeypatch: pytest.MonkeyPatch) -> None:
    from workspace.index import extract as module

    def broken(language: str) -> None:
        raise RuntimeError("grammar exploded")

    monkeypatch.setattr(module, "parser_for", broken)
    result = extract(b"def helper(x):\n    return x\n", "python")
    assert result.parser == "heuristic"
    assert [(d.name, d.kind, d.line) for d in result.definitions] == [("helper", "function", 1)]


def test_missing_grammar_falls_back_to_the_heuristic(monkeypatch: pytest.MonkeyPatch) -> None:
    from workspace.index import extract as module

    monkeypatch.setattr(module, "grammar", lambda language: None)
    result = extract(b"func Run() {}\n", "go")
    assert result.parser == "heuristic"
    assert [d.name for d in result.definitions] == ["Run"]


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=2000), language=st.sampled_from(["python", "javascript", "tsx", "go", "rust", "ruby"]))
def test_tree_sitter_extraction_never_raises(data: bytes, language: str) -> None:
    result = extract(data, language)
    assert result.parser == "tree-sitter"
    assert all(d.line >= 1 and d.end_line >= d.line for d in result.definitions)

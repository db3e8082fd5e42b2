"""The signal value and the tables that name well-known frameworks by the dependencies that bring them."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Signal:
    kind: str  # framework, dependency, lint or manifest (workspace.models.SignalKind)
    ecosystem: str  # npm, pypi, go, cargo, maven, gradle, gem, composer; '' for lint tools
    name: str
    version: str = ""
    dev: bool = False


def manifest(ecosystem: str) -> Signal:
    return Signal("manifest", ecosystem, ecosystem)


def lint(tool: str, *, version: str = "") -> Signal:
    return Signal("lint", "", tool, version)


# ecosystem -> {dependency name: framework}; PyPI names are compared normalised (PEP 503), Go paths without
# their /vN major-version suffix, Maven coordinates by group (see framework_of).
FRAMEWORKS: dict[str, dict[str, str]] = {
    "npm": {
        "react": "react",
        "next": "next",
        "vue": "vue",
        "nuxt": "nuxt",
        "@angular/core": "angular",
        "svelte": "svelte",
        "@sveltejs/kit": "sveltekit",
        "solid-js": "solid",
        "preact": "preact",
        "astro": "astro",
        "gatsby": "gatsby",
        "@remix-run/react": "remix",
        "react-native": "react-native",
        "electron": "electron",
        "express": "express",
        "koa": "koa",
        "fastify": "fastify",
        "@nestjs/core": "nestjs",
        "@hapi/hapi": "hapi",
        "tailwindcss": "tailwindcss",
        "jest": "jest",
        "vitest": "vitest",
        "mocha": "mocha",
        "jasmine": "jasmine",
        "ava": "ava",
        "@playwright/test": "playwright",
        "cypress": "cypress",
    },
    "pypi": {
        "django": "django",
        "flask": "flask",
        "fastapi": "fastapi",
        "starlette": "starlette",
        "tornado": "tornado",
        "aiohttp": "aiohttp",
        "sanic": "sanic",
        "pyramid": "pyramid",
        "bottle": "bottle",
        "falcon": "falcon",
        "litestar": "litestar",
        "quart": "quart",
        "celery": "celery",
        "sqlalchemy": "sqlalchemy",
        "djangorestframework": "django-rest-framework",
        "django-ninja": "django-ninja",
        "streamlit": "streamlit",
        "gradio": "gradio",
        "scrapy": "scrapy",
        "torch": "pytorch",
        "tensorflow": "tensorflow",
        "pytest": "pytest",
        "hypothesis": "hypothesis",
    },
    "go": {
        "github.com/gin-gonic/gin": "gin",
        "github.com/labstack/echo": "echo",
        "github.com/gofiber/fiber": "fiber",
        "github.com/gorilla/mux": "gorilla-mux",
        "github.com/go-chi/chi": "chi",
        "google.golang.org/grpc": "grpc",
        "gorm.io/gorm": "gorm",
        "github.com/spf13/cobra": "cobra",
        "github.com/stretchr/testify": "testify",
        "github.com/onsi/ginkgo": "ginkgo",
    },
    "cargo": {
        "actix-web": "actix-web",
        "axum": "axum",
        "rocket": "rocket",
        "warp": "warp",
        "tokio": "tokio",
        "tauri": "tauri",
        "bevy": "bevy",
        "diesel": "diesel",
        "sqlx": "sqlx",
        "tonic": "tonic",
        "leptos": "leptos",
        "yew": "yew",
    },
    "gem": {
        "rails": "rails",
        "sinatra": "sinatra",
        "hanami": "hanami",
        "roda": "roda",
        "grape": "grape",
        "sidekiq": "sidekiq",
        "rspec": "rspec",
        "rspec-rails": "rspec",
        "minitest": "minitest",
    },
    "composer": {
        "laravel/framework": "laravel",
        "symfony/framework-bundle": "symfony",
        "symfony/symfony": "symfony",
        "slim/slim": "slim",
        "cakephp/cakephp": "cakephp",
        "yiisoft/yii2": "yii",
        "codeigniter4/framework": "codeigniter",
        "phpunit/phpunit": "phpunit",
        "pestphp/pest": "pest",
    },
}
# Maven coordinates: (group prefix, artifact or '' for any) -> framework; the first match wins.
_JVM: tuple[tuple[str, str, str], ...] = (
    ("org.springframework.boot", "", "spring-boot"),
    ("org.springframework", "", "spring"),
    ("io.quarkus", "", "quarkus"),
    ("io.micronaut", "", "micronaut"),
    ("io.ktor", "", "ktor"),
    ("io.vertx", "", "vertx"),
    ("org.hibernate", "", "hibernate"),
    ("org.junit.jupiter", "", "junit"),
    ("junit", "junit", "junit"),
    ("org.testng", "testng", "testng"),
)
_PYPI_SEPARATORS = re.compile(r"[-_.]+")
_GO_MAJOR = re.compile(r"/v\d+$")


def framework_of(ecosystem: str, name: str) -> str:
    """The framework a dependency brings, or ''."""
    if ecosystem in ("maven", "gradle"):
        group, _, artifact = name.partition(":")
        for prefix, wanted, framework in _JVM:
            if (group == prefix or group.startswith(prefix + ".")) and wanted in ("", artifact):
                return framework
        return ""
    if ecosystem == "pypi":
        name = _PYPI_SEPARATORS.sub("-", name.lower())
    elif ecosystem == "go":
        name = _GO_MAJOR.sub("", name)
    return FRAMEWORKS.get(ecosystem, {}).get(name, "")

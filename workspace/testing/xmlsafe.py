"""Parsing report XML written by code we do not trust (a workspace's test run) without DTD tricks.

ElementTree (expat) expands internal entities, so a "billion laughs" document can exhaust memory, and a DOCTYPE is
the only way to declare one. We refuse entity declarations outright and decide per format about a DOCTYPE:
JUnit XML never carries one, so it is refused; JaCoCo always writes an external one
(``<!DOCTYPE report PUBLIC "-//JACOCO//DTD Report 1.1//EN" "report.dtd">``, see
https://www.jacoco.org/jacoco/trunk/coverage/report.dtd) and so does Java Cobertura, so those may keep an external
identifier with no internal subset; it is removed before parsing and expat never fetches it anyway.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # input is screened for DTDs and entities first

_ENTITY = re.compile(rb"<!ENTITY", re.IGNORECASE)
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
# An external identifier only: no "[" internal subset, so nothing can be declared.
_EXTERNAL_DOCTYPE = re.compile(
    rb"<!DOCTYPE\s+[\w:.-]+(?:\s+(?:PUBLIC\s+(?:\"[^\"]*\"|'[^']*')\s+(?:\"[^\"]*\"|'[^']*')"
    rb"|SYSTEM\s+(?:\"[^\"]*\"|'[^']*')))?\s*>",
    re.IGNORECASE,
)
_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*\?>")


class UnsafeXml(ValueError):
    """The document declares a DTD or entities; it is not parsed."""


def _as_utf8(data: bytes | str) -> bytes:
    """UTF-8 bytes without an XML declaration, so a UTF-16 document cannot hide '<!DOCTYPE' from the screen."""
    if isinstance(data, str):
        text = data
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16", errors="replace")
    else:
        text = data.decode("utf-8-sig", errors="replace")
    # The declaration may name another encoding; the text is already decoded, so drop it.
    return _DECLARATION.sub(b"", text.encode("utf-8"), count=1)


def safe_xml_root(data: bytes | str, *, allow_external_doctype: bool = False) -> ET.Element:
    """The root element of ``data``. Raises UnsafeXml for DTD content and ET.ParseError for malformed XML."""
    raw = _as_utf8(data)
    if _ENTITY.search(raw):
        raise UnsafeXml("the document declares entities (<!ENTITY>); refused")
    if _DOCTYPE.search(raw):
        if not allow_external_doctype:
            raise UnsafeXml("the document has a DOCTYPE; refused")
        stripped = _EXTERNAL_DOCTYPE.sub(b"", raw, count=1)
        if _DOCTYPE.search(stripped):
            raise UnsafeXml("the document has a DOCTYPE with an internal subset; refused")
        raw = stripped
    return ET.fromstring(raw)  # noqa: S314 - screened above


def local_name(tag: str) -> str:
    """``{namespace}name`` → ``name``."""
    return tag.rsplit("}", 1)[-1]

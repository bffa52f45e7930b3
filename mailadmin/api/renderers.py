"""JSON and XML renderers, chosen by the Accept header (JSON when nothing matches)."""

from __future__ import annotations

import re
from io import StringIO
from typing import Any
from xml.sax.saxutils import XMLGenerator

from rest_framework import renderers
from rest_framework.exceptions import ErrorDetail, NotAcceptable, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation


class JSONRenderer(renderers.JSONRenderer):
    media_type = "application/json"


class XMLRenderer(renderers.BaseRenderer):
    """Renders the envelope as XML: dict keys become elements, list members <item>."""

    media_type = "application/xml"
    format = "xml"
    charset = "utf-8"
    root_tag = "response"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context=None):
        if data is None:
            return b""
        stream = StringIO()
        xml = XMLGenerator(stream, self.charset)
        xml.startDocument()
        xml.startElement(self.root_tag, {})
        self._write(xml, data)
        xml.endElement(self.root_tag)
        xml.endDocument()
        return stream.getvalue().encode(self.charset)

    def _write(self, xml: XMLGenerator, data: Any) -> None:
        if isinstance(data, dict):
            for key, value in data.items():
                tag = _xml_name(str(key))
                xml.startElement(tag, {})
                self._write(xml, value)
                xml.endElement(tag)
        elif isinstance(data, list | tuple):
            for value in data:
                xml.startElement("item", {})
                self._write(xml, value)
                xml.endElement("item")
        elif data is None:
            return
        elif isinstance(data, bool):
            xml.characters("true" if data else "false")
        else:
            xml.characters(_xml_text(str(data)))


class TextXMLRenderer(XMLRenderer):
    media_type = "text/xml"


# What XML 1.0 can't carry (most control characters, lone surrogates, U+FFFE/U+FFFF):
# echoed input such as "Unrecognized field: \x01" would make the document ill-formed.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _xml_name(key: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
    return cleaned if cleaned[:1].isalpha() or cleaned[:1] == "_" else f"_{cleaned}"


class ContentNegotiation(DefaultContentNegotiation):
    """Like DRF's, but falls back to JSON instead of answering 406, and a `format` query
    parameter naming no renderer is a 400 naming it (DRF would answer 404)."""

    def select_renderer(self, request, renderers_list, format_suffix=None):
        renderers_list = list(renderers_list)
        if any(isinstance(r, XMLRenderer) for r in renderers_list):
            renderers_list.append(TextXMLRenderer())
        requested = format_suffix or request.query_params.get(self.settings.URL_FORMAT_OVERRIDE)
        if requested is not None:  # `?format=` (empty) names no renderer either
            formats = sorted({r.format for r in renderers_list})
            if requested not in formats:
                raise ValidationError(
                    {
                        "format": [
                            ErrorDetail(
                                f"Invalid value for field format: use {' or '.join(formats)}.",
                                code="custom",
                            )
                        ]
                    }
                )
        try:
            return super().select_renderer(request, renderers_list, format_suffix)
        except NotAcceptable:  # answer in JSON rather than refuse
            return renderers_list[0], renderers_list[0].media_type

"""The API's JSON parser: DRF's, except that a body too deeply nested for Python's parser
(`[[[[...` thousands deep raises RecursionError, not ValueError) is a 400 like any other
unparseable body instead of escaping as a 500."""

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class SafeJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as err:
            raise ParseError("JSON parse error - nested too deeply") from err

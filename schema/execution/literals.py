"""A validation rule for values written into a document: what variables get checked for at
the HTTP edge (`check_strings`), literals get here, once per distinct document.

JSON cannot carry 1e400, NaN or a lone surrogate, but a GraphQL literal can: graphql-core
reads `locationX: 1e400` as infinity and `"\\ud800"` as a lone surrogate, and a string
literal may hold NUL (`"\\u0000"`) or run for the whole document.
"""

from __future__ import annotations

import math
from typing import Any

from graphql import (
    ArgumentNode,
    FloatValueNode,
    GraphQLError,
    IntValueNode,
    ListValueNode,
    ObjectFieldNode,
    ObjectValueNode,
    StringValueNode,
    ValidationRule,
    ValueNode,
)

from pixelwand.errors import BadRequest
from pixelwand.services.validation import check_text


class LiteralValuesRule(ValidationRule):
    """Each argument's literal strings pass `check_text`; its floats are finite."""

    def enter_argument(self, node: ArgumentNode, *_args: Any) -> None:
        self._check(node.value, node.name.value, node)

    def _check(self, value: ValueNode, path: str, node: ArgumentNode) -> None:
        problem: str | None = None
        if isinstance(value, StringValueNode):
            try:
                check_text(value.value, path)
            except BadRequest as exc:
                problem = exc.message
        elif isinstance(value, FloatValueNode | IntValueNode):
            # float() reads a 400-digit literal as infinity, without an error.
            if not math.isfinite(float(value.value)):
                problem = f"{path} must be a finite number"
        elif isinstance(value, ListValueNode):
            for i, item in enumerate(value.values):
                self._check(item, f"{path}[{i}]", node)
            return
        elif isinstance(value, ObjectValueNode):
            field: ObjectFieldNode
            for field in value.fields:
                self._check(field.value, f"{path}.{field.name.value}", node)
            return
        if problem is not None:
            self.report_error(GraphQLError(problem, node))

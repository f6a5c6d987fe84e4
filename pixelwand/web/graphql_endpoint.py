"""GraphQL over HTTP at /graphql: POST JSON, GET for queries, GraphiQL for browsers."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from strawberry.http.ides import get_graphql_ide_html
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from pixelwand.runtime import Runtime
from pixelwand.web.gate import wants_graphiql
from pixelwand.web.responses import JSONResponse, graphql_error
from schema import schema
from schema.context import Context
from schema.errors import format_error

_GRAPHIQL = get_graphql_ide_html(graphql_ide="graphiql")


def _bad(message: str, status: int = 400) -> Response:
    return graphql_error(status, message, "BAD_REQUEST")


async def graphql_endpoint(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    if request.method == "GET":
        if wants_graphiql(request.scope):
            return HTMLResponse(_GRAPHIQL)
        params: dict[str, Any] = dict(request.query_params)
        if "variables" in params:
            try:
                params["variables"] = orjson.loads(params["variables"])
            except orjson.JSONDecodeError:
                return _bad("variables must be a JSON object")
        allowed = (OperationType.QUERY,)
    else:
        try:
            params = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _bad("request body is not valid JSON")
        allowed = (OperationType.QUERY, OperationType.MUTATION)
    if not isinstance(params, dict):
        return _bad("request body must be a JSON object")
    query = params.get("query")
    if not isinstance(query, str) or not query.strip():
        return _bad("no GraphQL query given")
    variables = params.get("variables")
    if variables is not None and not isinstance(variables, dict):
        return _bad("variables must be a JSON object")
    operation_name = params.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        return _bad("operationName must be a string")

    context = Context(runtime=runtime, principal=request.scope["state"]["principal"])
    try:
        result = await schema.execute(
            query,
            variable_values=variables,
            context_value=context,
            operation_name=operation_name,
            allowed_operation_types=allowed,
        )
    except InvalidOperationTypeError:
        return graphql_error(405, "mutations must be sent with POST", "BAD_REQUEST")
    body: dict[str, Any] = {}
    if result.errors:
        body["errors"] = [format_error(e) for e in result.errors]
    if result.data is not None or not result.errors:
        body["data"] = result.data
    return JSONResponse(body)

"""GraphQL over HTTP at /graphql: POST JSON, GET for queries, GraphiQL (vendored) for browsers.

Automatic persisted queries (Apollo's protocol): a request may carry
`extensions.persistedQuery = {"version": 1, "sha256Hash": …}` and no query; an unknown hash
answers `PersistedQueryNotFound` and the client sends the query once with its hash.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
from graphql import GraphQLError, OperationType
from starlette.requests import Request
from starlette.responses import Response

from pixelwand.errors import BadRequest, PixelWandError, QueryTooComplex, RateLimited
from pixelwand.priority import heavy
from pixelwand.ratelimit.allowance import Allowance
from pixelwand.runtime import Runtime
from pixelwand.services.validation import check_strings
from pixelwand.web.gate import update_rate_limit_headers, wants_graphiql
from pixelwand.web.pages import graphiql_page
from pixelwand.web.requests import parse_json, read_body
from pixelwand.web.responses import (
    EncodedJSONResponse,
    JSONResponse,
    encode_in_slices,
    graphql_error,
)
from schema import documents, schema
from schema.context import Context
from schema.errors import format_error
from schema.execution import execute_prepared
from schema.execution.documents import (
    DocumentTooLarge,
    PersistedQueryMismatch,
    PersistedQueryNotFound,
)
from schema.execution.executor import OperationNotAllowed

_QUERY_ONLY = (OperationType.QUERY,)
# Answers with more objects in lists than this are encoded in slices and sent in pieces, with
# pauses for other requests (pixelwand/web/responses.py); a page of 200 assets is encoded at
# once, as before.
LARGE_ANSWER_OBJECTS = 1_000
_ANY = (OperationType.QUERY, OperationType.MUTATION)


def _bad(message: str, status: int = 400) -> Response:
    return graphql_error(status, message, "BAD_REQUEST")


def _json_param(params: dict[str, Any], name: str) -> Response | None:
    if name in params and isinstance(params[name], str):
        try:
            params[name] = orjson.loads(params[name])
        except orjson.JSONDecodeError:
            return _bad(f"{name} must be a JSON object")
    return None


def _refused_before_execution(errors: list[GraphQLError] | None) -> PixelWandError | None:
    """The cost limit's refusals (QUERY_TOO_COMPLEX, a key's expensive queries at once)."""
    if errors and len(errors) == 1 and not errors[0].path:
        original = errors[0].original_error
        if isinstance(original, QueryTooComplex | RateLimited):
            return original
    return None


async def graphql_endpoint(request: Request) -> Response:
    try:
        return await _graphql(request)
    except PixelWandError as exc:
        return graphql_error(exc.status, exc.message, exc.code)


async def _graphql(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    if request.method == "GET":
        if wants_graphiql(request.scope):
            return graphiql_page()
        params: Any = dict(request.query_params)
        for name in ("variables", "extensions"):
            if (error := _json_param(params, name)) is not None:
                return error
        allowed: tuple[OperationType, ...] = _QUERY_ONLY
    else:
        # The body holds the document and the variables: one cap for the whole (the JSON
        # body limit); the document within it has its own, smaller one.
        raw = await read_body(request, runtime.settings.max_json_body_bytes)
        params = parse_json(raw)
        allowed = _ANY
    if not isinstance(params, dict):
        return _bad("request body must be a JSON object")
    query = params.get("query")
    variables = params.get("variables")
    operation_name = params.get("operationName")
    extensions = params.get("extensions")
    if query is not None and not isinstance(query, str):
        return _bad("query must be a string")
    if variables is not None and not isinstance(variables, dict):
        return _bad("variables must be a JSON object")
    if operation_name is not None and not isinstance(operation_name, str):
        return _bad("operationName must be a string")
    if extensions is not None and not isinstance(extensions, dict):
        return _bad("extensions must be a JSON object")
    if variables:
        try:
            check_strings(variables, "")
        except BadRequest as exc:
            # Like graphql-core's own variable errors: a well-formed request, answered 200.
            message = f"variable {exc.message}"
            return JSONResponse(
                {"errors": [{"message": message, "extensions": {"code": exc.code}}]}
            )

    persisted = (extensions or {}).get("persistedQuery")
    if persisted is not None:
        sha = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
        if not isinstance(sha, str) or persisted.get("version") != 1:
            return _bad("persistedQuery needs version 1 and a sha256Hash")
        try:
            prepared = documents.persisted(sha, query)
        except PersistedQueryNotFound:
            not_found = {
                "errors": [
                    {
                        "message": "PersistedQueryNotFound",
                        "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
                    }
                ]
            }
            return JSONResponse(not_found)
        except PersistedQueryMismatch:
            return _bad("provided sha256Hash does not match the query")
        except DocumentTooLarge as exc:
            return graphql_error(413, str(exc), "PAYLOAD_TOO_LARGE")
    elif not query or query.isspace():
        return _bad("no GraphQL query given")
    else:
        try:
            prepared = documents.prepare(query)
        except DocumentTooLarge as exc:
            return graphql_error(413, str(exc), "PAYLOAD_TOO_LARGE")

    principal = request.scope["state"]["principal"]
    allowance = Allowance(
        runtime.limiter,
        principal.key_id,
        runtime.limits(principal.plan).rps,
        runtime.settings.rate_limit_max_debt_seconds,
        principal.plan.value,
    )
    context = Context(
        runtime=runtime,
        principal=principal,
        max_cost=runtime.settings.graphql_max_cost,
        allowance=allowance,
    )
    try:
        result = await execute_prepared(
            schema._schema, prepared, variables, context, operation_name, allowed
        )
    except OperationNotAllowed:
        return graphql_error(
            405, "mutations must be sent with POST", "BAD_REQUEST", {"Allow": "GET, POST"}
        )
    if allowance.decision is not None:
        update_rate_limit_headers(request.scope, allowance.decision)
    refused = _refused_before_execution(result.errors) if result.data is None else None
    if refused is not None:
        # Refused before execution, like a 413 or 429: the GraphQL shape with the HTTP status.
        headers = (
            {"Retry-After": str(max(1, math.ceil(refused.retry_after)))}
            if isinstance(refused, RateLimited)
            else None
        )
        return graphql_error(refused.status, refused.message, refused.code, headers)
    body: dict[str, Any] = {}
    if result.errors:
        body["errors"] = [format_error(e) for e in result.errors]
    if result.data is not None or not result.errors or prepared.document is not None:
        body["data"] = result.data
    if context.objects > LARGE_ANSWER_OBJECTS:
        with heavy():
            return EncodedJSONResponse(await encode_in_slices(body))
    return JSONResponse(body)

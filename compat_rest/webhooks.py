"""/api/v1/webhooks: endpoint management and deliveries (admin scope), each route a stored
operation like every other REST route (routes.py has the plumbing)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from compat_rest.operations import StoredOperation
from compat_rest.routes import PREFIX, _endpoint, _json_body, _run
from pixelwand.errors import BadRequest
from pixelwand.web.responses import JSONResponse

_FIELDS = {"url", "events", "enabled"}


def _check_types(body: dict) -> None:
    """JSON clients mean what they send: GraphQL would turn a lone string into a list."""
    if "events" in body and body["events"] is not None and not isinstance(body["events"], list):
        raise BadRequest("events must be a list of event types")


async def list_webhooks(request: Request, op: StoredOperation) -> Response:
    return JSONResponse({"webhooks": await _run(request, op, {})})


async def create_webhook(request: Request, op: StoredOperation) -> Response:
    body = await _json_body(request, _FIELDS)
    for field in ("url", "events"):
        if body.get(field) is None:
            raise BadRequest(f"{field} is required")
    _check_types(body)
    result = await _run(request, op, {"input": body})
    return JSONResponse({**result["webhook"], "secret": result["secret"]}, status_code=201)


async def update_webhook(request: Request, op: StoredOperation) -> Response:
    body = await _json_body(request, _FIELDS)
    _check_types(body)
    variables = {"id": request.path_params["id"], "input": body}
    return JSONResponse(await _run(request, op, variables))


async def delete_webhook(request: Request, op: StoredOperation) -> Response:
    return JSONResponse(await _run(request, op, {"id": request.path_params["id"]}))


async def test_webhook(request: Request, op: StoredOperation) -> Response:
    result = await _run(request, op, {"id": request.path_params["id"]})
    return JSONResponse(result, status_code=202)


async def list_deliveries(request: Request, op: StoredOperation) -> Response:
    result = await _run(request, op, {"id": request.path_params["id"]})
    return JSONResponse({"deliveries": result})


_ONE = PREFIX + "/webhooks/{id}"

routes = [
    Route(PREFIX + "/webhooks", _endpoint("list_webhooks", list_webhooks), methods=["GET"]),
    Route(PREFIX + "/webhooks", _endpoint("create_webhook", create_webhook), methods=["POST"]),
    Route(_ONE, _endpoint("update_webhook", update_webhook), methods=["PATCH"]),
    Route(_ONE, _endpoint("delete_webhook", delete_webhook), methods=["DELETE"]),
    Route(_ONE + "/test", _endpoint("test_webhook", test_webhook), methods=["POST"]),
    Route(
        _ONE + "/deliveries",
        _endpoint("list_webhook_deliveries", list_deliveries),
        methods=["GET"],
    ),
]

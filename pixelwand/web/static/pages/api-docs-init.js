// Swagger UI (vendored swagger-ui-dist) over /api/v1/openapi.json. No validator badge (it
// would call swagger.io); "Try it out" sends the console's key from this tab's
// sessionStorage unless the Authorize dialog set one. Nothing is persisted elsewhere.
(function () {
  "use strict";
  window.ui = SwaggerUIBundle({
    url: "/api/v1/openapi.json",
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
    persistAuthorization: false,
    tryItOutEnabled: false,
    requestInterceptor: function (req) {
      var key = null;
      try { key = window.sessionStorage.getItem("pixelwand.apiKey"); } catch (e) { /* none */ }
      var has = Object.keys(req.headers || {}).some(function (h) { return h.toLowerCase() === "authorization"; });
      if (key && !has && req.url.indexOf("/api/v1/openapi.json") < 0) {
        req.headers.Authorization = "Bearer " + key;
      }
      return req;
    },
  });
})();

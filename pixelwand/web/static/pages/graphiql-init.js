// GraphiQL (vendored UMD build) over /graphql. Headers, tabs and queries persist in this
// tab only: GraphiQL's storage is sessionStorage, never localStorage or a cookie. The header
// template carries the console's key when the user signed in there in this tab.
(function () {
  "use strict";
  var key = null;
  try { key = window.sessionStorage.getItem("pixelwand.apiKey"); } catch (e) { /* no storage */ }
  var headers = JSON.stringify({ Authorization: "Bearer " + (key || "ak_live_REPLACE_ME") }, null, 2);
  var fetcher = GraphiQL.createFetcher({ url: window.location.origin + "/graphql" });
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(React.createElement(GraphiQL, {
    fetcher: fetcher,
    defaultHeaders: headers,
    shouldPersistHeaders: true,
    storage: window.sessionStorage,
    defaultEditorToolsVisibility: "headers",
    defaultQuery: "# Pixel Wand GraphQL. Put your key in the Headers pane below.\n" +
      "query Viewer {\n  viewer { organization { name } plan scopes storageUsed storageQuota }\n}\n",
  }));
})();

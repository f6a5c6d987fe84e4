import { html } from "/static/vendor/preact/htm-preact-standalone.module.js";

// Each scope grants only itself (read, write, admin): a page says what the signed-in key
// lacks instead of sending requests the API would refuse.
export const has = (viewer, scope) => viewer.scopes.includes(scope);

export function ScopeNote({ viewer, scope, what }) {
  return html`<p class="notice" role="note">${what} needs a key with the <strong>${scope}</strong> scope.
    This key has: ${viewer.scopes.join(", ") || "no scopes"}. Sign in with another key to do this.</p>`;
}

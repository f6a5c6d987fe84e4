// The console's only way to the server: GraphQL over fetch, with the key from this tab's
// sessionStorage as the Bearer header (never a cookie, never the URL). 429 answers are
// retried after the Retry-After the server sends.
const KEY = "pixelwand.apiKey";
export const SIGNED_OUT = "pixelwand:key-refused";

export const session = {
  key: () => sessionStorage.getItem(KEY),
  signIn: (key) => sessionStorage.setItem(KEY, key),
  // Everything this tab kept goes: the key, and GraphiQL's saved headers (they hold it too).
  signOut: () => sessionStorage.clear(),
};

export class ApiError extends Error {
  constructor(message, { code = null, status = 0, retryAfter = null } = {}) {
    super(message);
    this.code = code;
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

/** Why `key` cannot be an API key, or null. Keys are printable ASCII: fetch refuses a
 * header with "…" (the keys page's prefix, pasted) or a zero-width space, which read as
 * "the server cannot be reached". */
export function keyProblem(key) {
  const odd = [...key].find((c) => c < "!" || c > "~");
  if (odd === undefined) return null;
  const code = `U+${odd.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
  return `This key contains a character no key holds (${code}): paste the whole key.`;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function retryAfterSeconds(value, attempt) {
  const seconds = Number.parseFloat(value);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : Math.min(8, 2 ** attempt);
}

const MAX_RETRIES = 6;

/** POST a GraphQL document; answers {data, errors} (partial results kept). */
export async function request(query, variables = {}, key = session.key(), onWait = null) {
  for (let attempt = 0; ; attempt++) {
    let res;
    try {
      res = await fetch("/graphql", {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${key}` },
        body: JSON.stringify({ query, variables }),
      });
    } catch (e) {
      throw new ApiError("the server cannot be reached");
    }
    if ((res.status === 429 || res.status === 503) && attempt < MAX_RETRIES) {
      const seconds = retryAfterSeconds(res.headers.get("Retry-After"), attempt);
      if (onWait) onWait(seconds, res.status);
      await sleep(seconds * 1000);
      continue;
    }
    let body = null;
    try {
      body = await res.json();
    } catch (e) {
      throw new ApiError(`HTTP ${res.status}`, { status: res.status });
    }
    if (!res.ok || body.data == null) {
      const first = (body.errors && body.errors[0]) || { message: `HTTP ${res.status}` };
      // The tab's key was revoked, or its plan lost the API, while signed in: the console
      // signs out and the sign-in form says why (app.js).
      if ((res.status === 401 || res.status === 402) && key && key === session.key()) {
        window.dispatchEvent(new CustomEvent(SIGNED_OUT, { detail: first.message }));
      }
      throw new ApiError(first.message, {
        code: first.extensions && first.extensions.code,
        status: res.status,
        retryAfter: res.headers.get("Retry-After"),
      });
    }
    return body;
  }
}

/** Like request(), but any error (even beside partial data) is thrown. `onWait(seconds,
 * status)` is told of each 429/503 waited out. */
export async function gql(query, variables = {}, { onWait = null } = {}) {
  const body = await request(query, variables, session.key(), onWait);
  if (body.errors && body.errors.length) {
    const first = body.errors[0];
    throw new ApiError(first.message, { code: first.extensions && first.extensions.code });
  }
  return body.data;
}

// The capability probe rides along with the viewer (one request less at sign-in: a TEAM key
// has 3 a second).
const ASSET_TYPE = `__type(name: "Asset") { fields { name args { name type { kind name ofType { kind name } } } } }`;
const VIEWER = `{ viewer { organization { id name } plan scopes rateLimitPerSecond storageQuota storageUsed } asset: ${ASSET_TYPE} }`;

/** Who `key` is. `viewer` needs the read scope (read unlocks every query), so a valid key
 * without it (FORBIDDEN, not 401/402) is told apart by what it may do: with admin, its own
 * record in `apiKeys` (the plain key starts with the record's prefix) gives its scopes;
 * without admin either, it holds write (a key has at least one scope). Such a viewer has
 * no organization, plan or usage (`limited`). */
export async function whoAmI(key = session.key()) {
  try {
    const data = (await request(VIEWER, {}, key)).data;
    learnCapabilities(data.asset);
    return data.viewer;
  } catch (err) {
    if (err.code !== "FORBIDDEN") throw err;
  }
  let scopes = ["write"];
  try {
    const keys = (await request(`{ apiKeys { prefix scopes revokedAt } }`, {}, key)).data.apiKeys;
    const mine = keys.filter((k) => !k.revokedAt && key.startsWith(k.prefix));
    scopes = mine.length === 1 ? mine[0].scopes : ["admin"];
  } catch (err) {
    if (err.code !== "FORBIDDEN") throw err;
  }
  return { limited: true, organization: null, plan: null, scopes };
}

/** What a file's row says while a 429 or 503 is waited out. */
export function waiting(seconds, status) {
  return `${status === 429 ? "rate limited" : "server busy"}: retrying in ${seconds} s`;
}

export function formatBytes(n) {
  if (n == null) return "—";
  const units = ["B", "KB", "MB", "GB", "TB", "PB"];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 || v >= 100 ? 0 : 1)} ${units[i]}`;
}

export function splitTags(text) {
  return [...new Set(text.split(",").map((t) => t.trim()).filter(Boolean))];
}

// What the server offers beyond the reference, learnt once per sign-in by introspection:
// Asset.rendition (a page of thumbnails in one query) and the type of its format argument.
let capabilities = null;
function learnCapabilities(assetType) {
  const fields = (assetType && assetType.fields) || [];
  const rendition = fields.find((f) => f.name === "rendition");
  let formatLiteral = '"WEBP"';
  if (rendition) {
    const arg = rendition.args.find((a) => a.name === "format");
    const t = arg && (arg.type.kind === "NON_NULL" ? arg.type.ofType : arg.type);
    if (t && t.kind === "ENUM") formatLiteral = "WEBP";
  }
  capabilities = { rendition: Boolean(rendition), formatLiteral };
  return capabilities;
}
export async function serverCapabilities() {
  if (capabilities) return capabilities;
  return learnCapabilities((await gql(`{ ${ASSET_TYPE} }`)).__type);
}
export function forgetCapabilities() {
  capabilities = null;
}

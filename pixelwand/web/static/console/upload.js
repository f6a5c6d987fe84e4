import { html, useEffect, useRef, useState } from "/static/vendor/preact/htm-preact-standalone.module.js";
import { ApiError, formatBytes, gql, retryAfterSeconds, sleep, splitTags, waiting } from "./api.js";
import { collectionOptions } from "./collections.js";

const CONCURRENCY = 3;
const MAX_RETRIES = 6;
// Browsers leave File.type empty for some files; the API names what it accepts.
const BY_EXTENSION = {
  jpg: "image/jpeg", jpeg: "image/jpeg", png: "image/png", webp: "image/webp", gif: "image/gif",
  avif: "image/avif", tif: "image/tiff", tiff: "image/tiff", mp4: "video/mp4", mov: "video/quicktime",
  webm: "video/webm", heic: "image/heic",
};

function mimeOf(file) {
  if (file.type) return file.type;
  const ext = file.name.split(".").pop().toLowerCase();
  return BY_EXTENSION[ext] || "application/octet-stream";
}

/** PUT the bytes with XMLHttpRequest (fetch has no upload progress); retries 429/5xx. */
async function put(presigned, file, onProgress, onWait) {
  for (let attempt = 0; ; attempt++) {
    const outcome = await new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open(presigned.method || "PUT", presigned.uploadUrl);
      for (const [k, v] of Object.entries(presigned.headers || {})) xhr.setRequestHeader(k, v);
      xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded);
      xhr.onload = () => resolve({ status: xhr.status, body: xhr.responseText, retryAfter: xhr.getResponseHeader("Retry-After") });
      xhr.onerror = () => resolve({ status: 0, body: "", retryAfter: null });
      xhr.send(file);
    });
    if (outcome.status >= 200 && outcome.status < 300) return;
    if ((outcome.status === 429 || outcome.status >= 500 || outcome.status === 0) && attempt < MAX_RETRIES) {
      onProgress(0);
      const seconds = retryAfterSeconds(outcome.retryAfter, attempt);
      onWait(seconds, outcome.status);
      await sleep(seconds * 1000);
      onWait(null);
      continue;
    }
    let message = `upload failed (HTTP ${outcome.status})`;
    try { message = JSON.parse(outcome.body).error || message; } catch (e) { /* S3 answers XML */ }
    throw new ApiError(message, { status: outcome.status });
  }
}

async function uploadOne(entry, options, update) {
  const file = entry.file;
  const mimeType = mimeOf(file);
  // While a 429/503 is waited out the row says so, then goes back to its step.
  const step = (status) => {
    update({ status, note: null });
    return { onWait: (seconds, code) => update({ note: waiting(seconds, code) }) };
  };
  const p = await gql(`mutation Presign($input: PresignUploadInput!) { presignUpload(input: $input) { uploadUrl method headers storageKey } }`,
    { input: { originalName: file.name, mimeType, size: file.size } }, step("presigning"));
  const putting = step("uploading");
  await put(p.presignUpload, file, (loaded) => update({ loaded }),
    (seconds, code) => (seconds == null ? update({ note: null }) : putting.onWait(seconds, code)));
  update({ loaded: file.size });
  const f = await gql(`mutation Finalize($input: FinalizeUploadInput!) { finalizeUpload(input: $input) { asset { id name } created } }`,
    { input: { originalName: file.name, mimeType, size: file.size, storageKey: p.presignUpload.storageKey,
      tags: options.tags.length ? options.tags : null, collectionId: options.collectionId || null } }, step("finalizing"));
  update({ status: "done", note: null, assetId: f.finalizeUpload.asset.id });
}

export function Upload({ onUploaded }) {
  const [entries, setEntries] = useState([]);
  const [tags, setTags] = useState("");
  const [collectionId, setCollectionId] = useState("");
  const [collections, setCollections] = useState([]);
  const [dragging, setDragging] = useState(false);
  const state = useRef([]);
  const input = useRef(null);

  useEffect(() => {
    gql(`{ collections { id name parentId } }`).then((d) => setCollections(d.collections)).catch(() => {});
  }, []);

  function update(index, patch) {
    state.current[index] = { ...state.current[index], ...patch };
    setEntries([...state.current]);
  }
  async function start(files) {
    const base = state.current.length;
    const added = [...files].filter((f) => !f.name.startsWith(".")).map((file) => ({ file, loaded: 0, status: "queued", error: null }));
    if (!added.length) return;
    state.current = [...state.current, ...added];
    setEntries([...state.current]);
    const options = { tags: splitTags(tags), collectionId };
    let next = 0;
    const worker = async () => {
      while (next < added.length) {
        const i = base + next++;
        try {
          await uploadOne(state.current[i], options, (patch) => update(i, patch));
        } catch (err) {
          update(i, { status: "failed", error: err.message });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, added.length) }, worker));
    onUploaded && onUploaded();
  }
  function onDrop(e) {
    e.preventDefault();
    setDragging(false);
    start(e.dataTransfer.files);
  }

  const total = entries.reduce((s, e) => s + e.file.size, 0);
  const loaded = entries.reduce((s, e) => s + (e.status === "failed" ? e.file.size : e.loaded), 0);
  const done = entries.filter((e) => e.status === "done").length;
  const failed = entries.filter((e) => e.status === "failed").length;
  const finished = done + failed === entries.length;

  return html`
    <div class="upload-options">
      <div class="field"><label for="u-tags">Tags for these uploads</label>
        <input id="u-tags" value=${tags} onInput=${(e) => setTags(e.target.value)} placeholder="a, b" /></div>
      <div class="field"><label for="u-collection">Into collection</label>
        <select id="u-collection" value=${collectionId} onChange=${(e) => setCollectionId(e.target.value)}>
          <option value="">None</option>
          ${collectionOptions(collections).map(([c, label]) => html`<option value=${c.id}>${label}</option>`)}
        </select></div>
    </div>
    <div class=${"dropzone" + (dragging ? " dragging" : "")}
      onDragOver=${(e) => { e.preventDefault(); setDragging(true); }}
      onDragLeave=${() => setDragging(false)} onDrop=${onDrop}>
      <p>Drop images and videos here, or</p>
      <input id="u-files" ref=${input} type="file" multiple class="visually-hidden"
        accept="image/*,video/mp4,video/quicktime,video/webm"
        onChange=${(e) => { start(e.target.files); e.target.value = ""; }} />
      <label class="button" for="u-files">Choose files…</label>
      <p class="hint">JPEG, PNG, WebP, GIF, AVIF, TIFF, MP4, QuickTime, WebM.</p>
    </div>
    ${entries.length > 0 && html`
      <section aria-label="Upload progress">
        <label for="u-overall">Overall: ${done} of ${entries.length} uploaded${failed ? `, ${failed} failed` : ""} (${formatBytes(loaded)} of ${formatBytes(total)})</label>
        <progress id="u-overall" max=${total || 1} value=${loaded}></progress>
        <p role="status" class="visually-hidden">${finished ? `Uploads finished: ${done} uploaded, ${failed} failed.` : ""}</p>
        <ul class="uploads">
          ${entries.map((e, i) => html`
            <li class=${"upload " + e.status} key=${i}>
              <span class="name">${e.file.name}</span>
              <progress max=${e.file.size || 1} value=${e.status === "done" ? e.file.size : e.loaded} aria-label=${`Progress of ${e.file.name}`}></progress>
              <span class="upload-status">${e.status === "failed" ? html`<span class="error">Failed: ${e.error}</span>` : e.status === "done" ? "Uploaded" : e.note ? `${e.status} (${e.note})` : e.status}</span>
            </li>`)}
        </ul>
        ${finished && html`<p><a href="#/library">See them in the library</a></p>`}
      </section>`}
  `;
}

import { html, useEffect, useState } from "/static/vendor/preact/htm-preact-standalone.module.js";
import { gql } from "./api.js";
import { has, ScopeNote } from "./scopes.js";

const EMPTY = { name: "", format: "WEBP", quality: 85, maxWidth: "", maxHeight: "", preserveAspect: true, gravity: "center", perceptual: "", formats: null };
// Every setting a preset has: saving replaces the whole preset, so what the form does not
// show (formats) is carried over from the preset being edited, never dropped — while the
// format stays AUTO (the API takes candidates for AUTO only).
const FIELDS = "id name format quality maxWidth maxHeight preserveAspect gravity perceptual formats updatedAt";
const GRAVITIES = ["center", "focal", "attention", "entropy"];

export function Presets({ viewer }) {
  const [presets, setPresets] = useState(null);
  const [form, setForm] = useState(EMPTY);
  const [message, setMessage] = useState(null);
  const [error, setError] = useState(null);
  const load = () => gql(`{ exportPresets { ${FIELDS} } }`).then((d) => setPresets(d.exportPresets)).catch((e) => setError(e.message));
  useEffect(() => { if (has(viewer, "read")) load(); }, []);
  const num = (v) => (v === "" || v == null ? null : Number(v));
  async function save(e) {
    e.preventDefault();
    setMessage(null);
    setError(null);
    try {
      const d = await gql(`mutation Save($input: UpsertExportPresetInput!) { upsertExportPreset(input: $input) { created preset { name } } }`,
        { input: { name: form.name.trim(), format: form.format, quality: auto ? null : num(form.quality), maxWidth: num(form.maxWidth),
          maxHeight: num(form.maxHeight), preserveAspect: form.preserveAspect, gravity: form.gravity,
          perceptual: form.perceptual.trim() || null, formats: auto ? form.formats : null } });
      setMessage(`${d.upsertExportPreset.created ? "Created" : "Updated"} “${d.upsertExportPreset.preset.name}”.`);
      load();
    } catch (err) {
      setError(err.message);
    }
  }
  const edit = (p) => {
    setForm({ ...p, maxWidth: p.maxWidth ?? "", maxHeight: p.maxHeight ?? "", perceptual: p.perceptual ?? "" });
    document.getElementById("p-name").focus();
  };
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.value });
  // AUTO picks the format and its quality per image for the perceptual target: no quality.
  const auto = form.format === "AUTO";
  return html`
    <section aria-labelledby="list-h">
      <h2 id="list-h">Presets</h2>
      ${!has(viewer, "read") ? html`<${ScopeNote} viewer=${viewer} scope="read" what="Listing presets" />`
        : presets == null ? html`<p role="status">Loading…</p>` : !presets.length ? html`<p>No presets yet.</p>` : html`
        <div class="table-wrap"><table>
          <thead><tr><th scope="col">Name</th><th scope="col">Format</th><th scope="col">Quality</th><th scope="col">Max size</th><th scope="col">Aspect</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
          <tbody>${presets.map((p) => html`<tr key=${p.id}>
            <th scope="row">${p.name}</th><td>${p.format}</td><td>${p.quality}</td>
            <td>${p.maxWidth ?? "—"} × ${p.maxHeight ?? "—"}</td><td>${p.preserveAspect ? "fit" : `crop (${p.gravity})`}</td>
            <td>${has(viewer, "write") && html`<button type="button" class="secondary" onClick=${() => edit(p)} aria-label=${`Edit ${p.name}`}>Edit</button>`}</td>
          </tr>`)}</tbody>
        </table></div>`}
    </section>
    <section aria-labelledby="form-h">
      <h2 id="form-h">Create or update</h2>
      ${!has(viewer, "write") ? html`<${ScopeNote} viewer=${viewer} scope="write" what="Saving a preset" />` : html`
      <p class="hint">Saving under an existing name replaces that preset.</p>
      <form class="stack narrow" onSubmit=${save}>
        <label for="p-name">Name</label>
        <input id="p-name" value=${form.name} onInput=${set("name")} required />
        <label for="p-format">Format</label>
        <select id="p-format" value=${form.format} onChange=${set("format")}>
          ${["JPEG", "PNG", "WEBP", "AVIF", "AUTO"].map((f) => html`<option value=${f}>${f}</option>`)}
        </select>
        ${auto && form.formats && html`<p class="hint">AUTO picks among ${form.formats.join(", ")} (kept).</p>`}
        <label for="p-quality">Quality (1–100)</label>
        <input id="p-quality" type="number" min="1" max="100" value=${auto ? "" : form.quality} onInput=${set("quality")} disabled=${auto} />
        <label for="p-w">Max width (px)</label>
        <input id="p-w" type="number" min="1" max="16384" value=${form.maxWidth} onInput=${set("maxWidth")} />
        <label for="p-h">Max height (px)</label>
        <input id="p-h" type="number" min="1" max="16384" value=${form.maxHeight} onInput=${set("maxHeight")} />
        <label class="check"><input type="checkbox" checked=${form.preserveAspect}
          onChange=${(e) => setForm({ ...form, preserveAspect: e.target.checked })} /> Keep aspect ratio (off: crop to exactly width × height)</label>
        <label for="p-gravity">Crop keeps (gravity)</label>
        <select id="p-gravity" value=${form.gravity} onChange=${set("gravity")}>
          ${GRAVITIES.map((g) => html`<option value=${g}>${g}</option>`)}
        </select>
        <label for="p-perceptual">Perceptual target (optional)</label>
        <input id="p-perceptual" value=${form.perceptual} onInput=${set("perceptual")} placeholder="auto:high" aria-describedby="p-perceptual-help" />
        <p id="p-perceptual-help" class="hint">auto, auto:low|medium|high|best or auto:NN: quality chosen per image; needed by AUTO.</p>
        <button type="submit">Save preset</button>
      </form>`}
      ${message && html`<p role="status" class="ok">${message}</p>`}
      ${error && html`<p role="alert" class="error">${error}</p>`}
    </section>`;
}

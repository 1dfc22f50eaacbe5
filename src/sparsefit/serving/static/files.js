/* Data-file pickers shared by #train and #evaluate: the files under the allowed roots (GET /api/files) as a
 * <select> grouped by root, and uploads (POST /api/uploads) added to every picker. */
import { api } from "./api.js";
import { clear, h } from "./dom.js";
import { fmtBytes } from "./format.js";

export const files = { list: [], roots: [] };

/** Reload the data files under the allowed roots (the uploads made here are kept). */
export async function loadFiles() {
  const data = await api("/api/files");
  const uploads = files.list.filter((f) => !(data.files || []).some((g) => g.path === f.path) && f.uploaded);
  files.list = [...(data.files || []), ...uploads];
  files.roots = data.roots || [];
  return files;
}

/** Fill a <select> with the data files, grouped by root; the selected value is kept when it is still offered. */
export function fileOptions(select, placeholder) {
  const keep = select.value;
  clear(select).append(h("option", { value: "" }, placeholder));
  const byRoot = new Map();
  for (const f of files.list) {
    const root = files.roots.find((r) => f.path.startsWith(r)) || f.path.slice(0, f.path.length - f.name.length);
    if (!byRoot.has(root)) byRoot.set(root, []);
    byRoot.get(root).push(f);
  }
  for (const [root, list] of byRoot) {
    const group = h("optgroup", { label: root });
    for (const f of list) {
      const rel = f.path.startsWith(root) ? f.path.slice(root.length).replace(/^[\\/]/, "") : f.name;
      group.append(h("option", { value: f.path, "data-name": f.name, title: f.path }, `${rel || f.name}  (${fmtBytes(f.size)})`));
    }
    select.append(group);
  }
  if (keep && [...select.options].some((o) => o.value === keep)) select.value = keep;
}

/** Upload the file picked in an <input type=file> (cleared afterwards); the saved file, now in the list. */
export async function uploadFile(input) {
  const file = input.files && input.files[0];
  if (!file) return null;
  const form = new FormData();
  form.append("file", file);
  try {
    const saved = await api("/api/uploads", { method: "POST", form });
    if (!files.list.some((f) => f.path === saved.path)) files.list.push({ ...saved, uploaded: true });
    return saved;
  } finally {
    input.value = "";
  }
}

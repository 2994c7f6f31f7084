// Shared by every page: signing in, calling the /v1 API, building elements safely.
//
// Rule: text from the API is only ever put into the page with textContent (through el()
// below) or as an attribute value; nothing here or in the pages uses innerHTML, so a
// city called "<script>…</script>" shows exactly that.

const KEY = "iccmatch.key";
const ME = "iccmatch.me";

export const ROLE_TEXT = {
  admin: "the secretariat (admin)",
  coordinator: "a city coordinator",
  analyst: "an analyst (read-only)",
};

// ---------------------------------------------------------------- elements

/** Make an element. props: text, class, on: {event: fn}, dataset, style, other attributes. */
export function el(tag, props = {}, ...kids) {
  const node = document.createElement(tag);
  setProps(node, props);
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    node.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** Make an SVG element (attributes only; text through the `text` prop). */
export function svgEl(tag, props = {}, ...kids) {
  const node = document.createElementNS(SVG_NS, tag);
  setProps(node, props);
  for (const kid of kids.flat(Infinity)) if (kid) node.append(kid);
  return node;
}

function setProps(node, props) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") node.textContent = String(v);
    else if (k === "class") node.setAttribute("class", v);
    else if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "style") for (const [p, val] of Object.entries(v)) node.style.setProperty(p, val);
    else if (v === true) node.setAttribute(k, "");
    else node.setAttribute(k, String(v));
  }
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

// ---------------------------------------------------------------- words and numbers

const regions = safeNames("region");
const languages = safeNames("language");

function safeNames(type) {
  try {
    return new Intl.DisplayNames(["en"], { type });
  } catch {
    return null;
  }
}

export function countryName(code) {
  if (!code) return "";
  try {
    return (regions && regions.of(code)) || code;
  } catch {
    return code;
  }
}

export function languageName(code) {
  if (!code) return "";
  try {
    const name = languages && languages.of(code);
    return name && name !== code ? name : code;
  } catch {
    return code;
  }
}

export function listWords(items) {
  const xs = items.filter(Boolean);
  if (xs.length <= 1) return xs.join("");
  return `${xs.slice(0, -1).join(", ")} and ${xs[xs.length - 1]}`;
}

export function num(x, digits = 2) {
  if (x === null || x === undefined || Number.isNaN(Number(x))) return "–";
  return Number(x).toLocaleString("en-GB", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

/** A figure with exactly ``digits`` decimals (scores side by side: 0.60 beside 0.63, not 0.6). */
export function fixed(x, digits = 2) {
  if (x === null || x === undefined || Number.isNaN(Number(x))) return "–";
  return Number(x).toLocaleString("en-GB", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function plural(n, word, many = `${word}s`) {
  return `${n.toLocaleString("en-GB")} ${n === 1 ? word : many}`;
}

// ---------------------------------------------------------------- the API

export class ApiError extends Error {
  constructor(status, title, detail, errors = []) {
    super(detail || title);
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.errors = errors;
  }
}

export function getKey() {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

/** Call the API with this tab's key. JSON in, JSON out (or the Response with raw: true). */
export async function api(path, { method = "GET", body, signal, raw = false, key = getKey() } = {}) {
  const headers = { Accept: raw ? "*/*" : "application/json" };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      credentials: "omit",
      cache: "no-store",
    });
  } catch (e) {
    if (e && e.name === "AbortError") throw e;
    throw new ApiError(0, "No answer", "The iccmatch server did not answer. Check your connection and try again.");
  }
  if (!res.ok) throw await problemOf(res);
  return raw ? res : res.json();
}

async function problemOf(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    /* not JSON */
  }
  const title = (body && body.title) || res.statusText || "Error";
  let detail = body && typeof body.detail === "string" ? body.detail : "";
  if (!detail) detail = `The server answered ${res.status} ${res.statusText}.`;
  const errors = body && Array.isArray(body.errors) ? body.errors : [];
  const err = new ApiError(res.status, title, detail, errors);
  if (res.status === 401) signedOut(err);
  return err;
}

/** Every row of a paginated list, following next_cursor. */
export async function apiAll(path, { signal } = {}) {
  const items = [];
  let cursor = null;
  const sep = path.includes("?") ? "&" : "?";
  for (let guard = 0; guard < 1000; guard++) {
    const q = `${sep}limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const page = await api(path + q, { signal });
    items.push(...page.items);
    if (!page.next_cursor) break;
    cursor = page.next_cursor;
  }
  return items;
}

const cache = new Map();
/** The same read once per page load (cities, themes, networks...). */
export function cached(path) {
  if (!cache.has(path)) {
    const p = apiAll(path);
    p.catch(() => cache.delete(path));
    cache.set(path, p);
  }
  return cache.get(path);
}

export async function citiesById() {
  const rows = await cached("/v1/cities");
  return new Map(rows.map((c) => [c.id, c]));
}

export async function themesById() {
  const rows = await cached("/v1/themes");
  return new Map(rows.map((t) => [t.id, t]));
}

/** Fetch a file with the key and hand it to the browser as a download. */
export async function download(path, filename) {
  const res = await api(path, { raw: true });
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// ---------------------------------------------------------------- feedback

/** Put an error into `box` in words: the problem's title, its detail and any field problems. */
export function showError(box, err, prefix = "") {
  if (err && err.name === "AbortError") return;
  box.hidden = false;
  const title = err instanceof ApiError ? err.title : "Something went wrong";
  const detail = err instanceof ApiError ? err.detail : String((err && err.message) || err);
  const kids = [el("strong", { text: `${prefix}${title}: ` }), detail];
  if (err instanceof ApiError && err.errors && err.errors.length) {
    kids.push(el("ul", {}, err.errors.slice(0, 10).map((e) => el("li", { text: `${e.field}: ${e.message}` }))));
  }
  box.replaceChildren(...kids);
}

export function hideError(box) {
  box.hidden = true;
  box.replaceChildren();
}

/** A status line with a spinner while `work` runs; returns work's result. */
export async function withBusy(line, text, work) {
  const token = Symbol("busy");
  line.busyToken = token;
  line.replaceChildren(el("span", { class: "spinner", "aria-hidden": "true" }), el("span", { text }));
  line.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    if (line.busyToken === token) {
      line.replaceChildren();
      line.removeAttribute("aria-busy");
    }
  }
}

export function say(line, text) {
  line.replaceChildren(el("span", { text }));
}

/** Reasons as a list: the sentence, and its share of the score when it has one. */
export function reasonList(reasons, { weights = true } = {}) {
  const items = (reasons || []).map((r) => {
    const li = el("li", { dataset: { kind: r.kind } }, el("span", { class: "reason-text", text: r.text }));
    if (weights && r.weight > 0.005) li.append(" ", el("span", { class: "w", text: `(${Math.round(r.weight * 100)}% of the score)` }));
    else if (weights && r.weight < -0.005) li.append(" ", el("span", { class: "w", text: `(lowers the score by ${Math.round(-r.weight * 100)}%)` }));
    return li;
  });
  return el("ul", { class: "reasons" }, items);
}

// ---------------------------------------------------------------- signing in

let onSignedIn = null;

function showSignIn(message) {
  document.documentElement.classList.remove("has-key", "signed-in");
  const box = $("#signin-error");
  if (message) {
    box.textContent = message;
    box.hidden = false;
  } else {
    box.hidden = true;
  }
  const input = $("#api-key");
  if (input) input.focus();
}

function signedOut(err) {
  try {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(ME);
  } catch {
    /* ignore */
  }
  showSignIn(`Please sign in again: ${err.detail}`);
}

async function whoAmI(key) {
  return api("/v1/me", { key });
}

function describe(me, cityName) {
  if (me.role === "coordinator") return `Signed in as the coordinator for ${cityName || me.city_id}`;
  return `Signed in as ${ROLE_TEXT[me.role] || me.role}`;
}

async function enter(me) {
  document.documentElement.classList.add("has-key", "signed-in");
  let cityName = null;
  if (me.city_id) {
    try {
      cityName = (await api(`/v1/cities/${encodeURIComponent(me.city_id)}`)).name;
    } catch {
      cityName = me.city_id;
    }
  }
  me.city_name = cityName;
  $("#who-text").textContent = describe(me, cityName);
  if (!onSignedIn) return;
  // The page wires its forms in init, after its first fetches: until then their buttons are
  // disabled, so an early press is neither lost nor a native submit that reloads the page.
  const waiting = $$("main button[type=submit]:not([disabled])");
  for (const b of waiting) b.disabled = true;
  try {
    await onSignedIn(me);
  } finally {
    for (const b of waiting) b.disabled = false;
  }
}

/** Wire the sign-in form and sign-out button; call init(me) once a key is known to work. */
export function start(init) {
  onSignedIn = init;
  // every form here is handled by script; none may navigate (a reload loses the page's state)
  document.addEventListener("submit", (ev) => ev.preventDefault(), true);
  const form = $("#signin-form");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const key = $("#api-key").value.trim();
    if (!key) return;
    const button = $("#signin-button");
    button.disabled = true;
    $("#signin-error").hidden = true;
    try {
      const me = await whoAmI(key);
      sessionStorage.setItem(KEY, key);
      $("#api-key").value = "";
      await enter(me);
    } catch (err) {
      const text = err instanceof ApiError ? err.detail : String(err);
      showSignIn(`That key did not work: ${text}`);
    } finally {
      button.disabled = false;
    }
  });
  $("#sign-out").addEventListener("click", () => {
    try {
      sessionStorage.removeItem(KEY);
    } catch {
      /* ignore */
    }
    window.location.reload();
  });
  const key = getKey();
  if (!key) {
    showSignIn(null);
    return;
  }
  whoAmI(key)
    .then(enter)
    .catch((err) => {
      if (err.status !== 401) showSignIn(`Could not check your key: ${err.detail || err}`);
    });
}

// ---------------------------------------------------------------- colours

/** Distinct colours (Okabe–Ito first, then a few more), readable on white. */
export const PALETTE = [
  "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#d55e00", "#56b4e9", "#8c6d1f", "#7d3c98",
  "#2e8b57", "#b22222", "#4169e1", "#ff7f50", "#6b8e23", "#c71585", "#20b2aa", "#a0522d",
  "#708090", "#9acd32", "#dc143c", "#00ced1", "#8b008b", "#556b2f", "#ff8c00", "#483d8b",
];
export const GREY = "#9aa3ad";

export function params() {
  return new URLSearchParams(window.location.search);
}

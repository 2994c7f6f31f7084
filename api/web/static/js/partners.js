// Partner finder: ranked partners for one city, as cards beside a map; answers go to the
// secretariat through POST /v1/cities/{city}/interests.

import {
  $, api, citiesById, countryName, el, fixed, hideError, languageName, listWords, num, params,
  reasonList, say, showError, start, themesById, withBusy,
} from "./common.js";
import { WorldMap } from "./map.js";

const STATUS = { interested: "Interested", not_for_us: "Not for us" };
let me = null;
let cities = new Map();
let themes = new Map();
let map = null;
let inflight = null;

start(async (who) => {
  me = who;
  map = new WorldMap($("#map"), {
    label: "Map of the suggested partners",
    onSelect: (id) => {
      const card = document.querySelector(`.card[data-id="${CSS.escape(id)}"]`);
      if (card) {
        card.scrollIntoView({ block: "nearest", behavior: "smooth" });
        card.focus();
      }
    },
  });
  try {
    [cities, themes] = await Promise.all([citiesById(), themesById()]);
  } catch (err) {
    showError($("#form-error"), err, "Could not load the cities: ");
    return;
  }
  fillForm();
  $("#search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    search();
  });
  $("#answers").hidden = false; // the secretariat sees every answer, a coordinator its own
  if (me.role === "coordinator") {
    $("#answers-title").textContent = "Your answers and matches";
    $("#answers-note").textContent = "What you answered, what other cities answered about you, and the cities that are interested in you as you are in them.";
  }
  loadAnswers();
  map.setLabel("Map of the network's cities; suggested partners appear here");
  map.render({ points: [...cities.values()].map((c) => ({ id: c.id, lat: c.lat, lon: c.lon, color: "#9aa3ad", r: 3, title: c.name })) });
  if (params().has("k")) search(); // a shared link: run its search
});

function fillForm() {
  const p = params();
  const citySelect = $("#city");
  if (me.role === "coordinator") {
    const own = cities.get(me.city_id);
    citySelect.replaceChildren(el("option", { value: me.city_id, text: own ? own.name : me.city_id, selected: true }));
    citySelect.disabled = true;
    $("#city-hint").textContent = "Your key is for this city: you look for partners for your own city.";
  } else {
    const byCountry = new Map();
    for (const c of [...cities.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      const country = countryName(c.country);
      if (!byCountry.has(country)) byCountry.set(country, []);
      byCountry.get(country).push(c);
    }
    const groups = [...byCountry.keys()].sort((a, b) => a.localeCompare(b)).map((country) =>
      el("optgroup", { label: country }, byCountry.get(country).map((c) => el("option", { value: c.id, text: c.name }))),
    );
    citySelect.replaceChildren(el("option", { value: "", text: "Choose a city…" }), ...groups);
    if (p.get("city") && cities.has(p.get("city"))) citySelect.value = p.get("city");
  }
  const themeSelect = $("#theme");
  themeSelect.replaceChildren(
    el("option", { value: "", text: "Any theme" }),
    ...[...themes.values()].sort((a, b) => a.name.localeCompare(b.name)).map((t) => el("option", { value: t.id, text: t.name })),
  );
  if (p.get("theme") && themes.has(p.get("theme"))) themeSelect.value = p.get("theme");
  $("#force").replaceChildren(
    el("option", { value: "", text: "No city" }),
    ...[...cities.values()].sort((a, b) => a.name.localeCompare(b.name)).map((c) => el("option", { value: c.id, text: `${c.name} (${countryName(c.country)})` })),
  );
  if (p.get("force") && cities.has(p.get("force"))) $("#force").value = p.get("force");
  $("#interpretation").checked = p.get("interpretation") === "true";
  const langs = new Set();
  for (const c of cities.values()) for (const l of c.languages || []) langs.add(l);
  $("#language").replaceChildren(
    el("option", { value: "", text: "Any language" }),
    ...[...langs].map((l) => [l, languageName(l)]).sort((a, b) => a[1].localeCompare(b[1])).map(([l, name]) => el("option", { value: l, text: name })),
  );
  if (p.get("language")) $("#language").value = p.get("language");
  if (p.get("max_km")) $("#max-km").value = p.get("max_km");
  if (p.get("membership")) $("#membership").value = p.get("membership");
  if (p.get("k")) $("#k").value = p.get("k");
  if (["mark", "hide"].includes(p.get("again"))) $("#again").value = p.get("again");
  $("#remember").addEventListener("click", rememberList);
}

let lastResult = null;

/** Remember the list on screen as suggested to its city today: the next lists mark or hide it. */
async function rememberList() {
  const result = lastResult;
  if (!result || !result.suggestions.length) return;
  const error = $("#remember-error");
  hideError(error);
  $("#remember").disabled = true;
  try {
    const memo = await api(`/v1/cities/${encodeURIComponent(result.city_id)}/suggestions`, {
      method: "POST",
      body: { partner_ids: result.suggestions.map((s) => s.city_id) },
    });
    const name = (cities.get(memo.city_id) || {}).name || memo.city_id;
    say($("#remember-status"), `Remembered ${memo.remembered} suggestion${memo.remembered === 1 ? "" : "s"} as made to ${name} on ${memo.on}.`);
    if (!$("#answers").hidden) loadAnswers();
  } catch (err) {
    showError(error, err, "Not remembered: ");
  } finally {
    $("#remember").disabled = false;
  }
}

function query() {
  const q = new URLSearchParams();
  const k = Math.round(Number($("#k").value || 10));
  q.set("k", String(Math.min(50, Math.max(1, k || 10))));
  if ($("#theme").value) q.set("theme", $("#theme").value);
  if ($("#language").value) q.set("language", $("#language").value);
  const km = $("#max-km").value.trim();
  if (km) q.set("max_km", km);
  if ($("#membership").value) q.set("membership", $("#membership").value);
  if ($("#include-current").checked) q.set("include_current", "true");
  if ($("#interpretation").checked) q.set("interpretation", "true");
  if ($("#force").value) q.set("force", $("#force").value);
  if ($("#again").value) q.set("again", $("#again").value);
  return q;
}

async function search() {
  const formError = $("#form-error");
  hideError(formError);
  hideError($("#error"));
  const cityId = $("#city").value;
  if (!cityId) {
    formError.hidden = false;
    formError.replaceChildren(el("strong", { text: "Choose a city first." }));
    $("#city").focus();
    return;
  }
  const km = $("#max-km").value.trim();
  if (km && !(Number(km) > 0 && Number(km) <= 25000)) {
    formError.hidden = false;
    formError.replaceChildren(el("strong", { text: "Maximum distance: " }), "give a number of kilometres between 1 and 25,000, or leave it empty.");
    $("#max-km").focus();
    return;
  }
  const q = query();
  const city = cities.get(cityId);
  const shown = new URLSearchParams(q);
  if (me.role !== "coordinator") shown.set("city", cityId);
  history.replaceState(null, "", `?${shown}`);
  if (inflight) inflight.abort();
  const ctrl = new AbortController();
  inflight = ctrl;
  const button = $("#find");
  button.disabled = true;
  $("#cards").setAttribute("aria-busy", "true");
  try {
    const result = await withBusy(
      $("#status"),
      `Ranking partners for ${city ? city.name : cityId}…`,
      () => api(`/v1/cities/${encodeURIComponent(cityId)}/partners?${q}`, { signal: ctrl.signal }),
    );
    if (ctrl.signal.aborted) return;
    render(result);
  } catch (err) {
    if (err.name === "AbortError") return;
    showError($("#error"), err, "Could not rank partners: ");
    say($("#status"), "");
  } finally {
    if (inflight === ctrl) {
      inflight = null;
      button.disabled = false;
      $("#cards").removeAttribute("aria-busy");
    }
  }
}

function canAnswer(cityId) {
  return me.role === "admin" || (me.role === "coordinator" && me.city_id === cityId);
}

function render(result) {
  const self = cities.get(result.city_id);
  const selfName = self ? self.name : result.city_id;
  const n = result.suggestions.length;
  $("#results-title").textContent = n
    ? `${n} suggested partner${n === 1 ? "" : "s"} for ${selfName}`
    : `No partner found for ${selfName}`;
  const hidden = result.hidden_as_suggested
    ? ` ${result.hidden_as_suggested} partner${result.hidden_as_suggested === 1 ? "" : "s"} suggested before ${result.hidden_as_suggested === 1 ? "is" : "are"} left out.`
    : "";
  say($("#status"), `${num(result.considered, 0)} ${result.considered === 1 ? "city was" : "cities were"} considered; ranked by ${result.ranker}.${hidden} Scores are relative to the best match (1.00); a card moved down so one country does not fill the list says so.`);
  lastResult = result;
  $("#remember-box").hidden = !(n && canAnswer(result.city_id));
  $("#remember").textContent = `Remember this list as suggested to ${selfName}`;
  say($("#remember-status"), "");
  const list = $("#cards");
  if (!n) {
    list.replaceChildren(el("li", { class: "empty", text: "No city passes these filters. Try another theme or language, a larger distance, or any membership." }));
  } else {
    list.replaceChildren(...result.suggestions.map((s, i) => card(s, i + 1, result.city_id)));
  }
  const points = result.suggestions.map((s, i) => {
    const c = cities.get(s.city_id) || {};
    return { id: s.city_id, lat: c.lat, lon: c.lon, color: "#0072b2", r: 6, title: `${i + 1}. ${s.name} (${countryName(s.country)})`, label: String(i + 1) };
  });
  if (self) points.push({ id: self.id, lat: self.lat, lon: self.lon, color: "#d55e00", r: 8, title: `${self.name} (the city looking for partners)`, label: self.name });
  const links = self
    ? result.suggestions.map((s) => {
        const c = cities.get(s.city_id) || {};
        return { from: [self.lon, self.lat], to: [c.lon, c.lat], color: "#0072b2", width: 1 };
      })
    : [];
  map.setLabel(`Map: ${selfName} (orange) and its ${n} suggested partners (blue, numbered as in the list)`);
  map.render({ points, links });
}

function card(s, rank, selfId) {
  const c = cities.get(s.city_id) || {};
  const comp = s.components || {};
  const numbers = [
    ["Distance", comp.distance_km !== undefined ? `${num(comp.distance_km, 0)} km` : null],
    ["Shared languages", comp.shared_languages !== undefined ? num(comp.shared_languages, 0) : null],
    ["Shared priorities", comp.shared_priorities !== undefined ? num(comp.shared_priorities, 2) : null],
    ["Profile similarity", comp.profile_similarity !== undefined ? num(comp.profile_similarity, 2) : null],
    ["Common partners", comp.common_partners !== undefined ? num(comp.common_partners, 0) : null],
  ].filter(([, v]) => v !== null);
  const facts = [countryName(s.country), c.membership === "national" ? "member through a national network" : "international member"];
  if (c.languages && c.languages.length) facts.push(`speaks ${listWords(c.languages.map(languageName))}`);
  const headingId = `card-${rank}-title`;
  const li = el(
    "li",
    { class: "card", tabindex: "-1", "aria-labelledby": headingId, dataset: { id: s.city_id } },
    el(
      "header",
      {},
      el("span", { class: "rank", "aria-hidden": "true", text: rank }),
      el("h3", { id: headingId }, el("span", { class: "visually-hidden", text: `${rank}. ` }), el("span", { class: "partner-name", text: s.name })),
      s.forced ? el("span", { class: "badge", text: "asked for" }) : null,
      s.suggested_before ? el("span", { class: "badge warn", text: "suggested before" }) : null,
      el("span", { class: "score", text: `Score ${fixed(s.score, 2)}` }),
    ),
    el("div", { class: "meter", role: "presentation" }, el("span", { style: { width: `${Math.max(2, Math.min(100, s.score * 100)).toFixed(0)}%` } })),
    el("p", { class: "note", text: facts.join(" · ") }),
    el("h4", { class: "visually-hidden", text: "Why" }),
    reasonList(s.reasons),
    numbers.length ? el("dl", { class: "numbers" }, numbers.map(([k, v]) => el("div", {}, el("dt", { text: k }), el("dd", { text: v })))) : null,
  );
  li.addEventListener("mouseenter", () => map.highlight(s.city_id));
  li.addEventListener("mouseleave", () => map.highlight(null));
  li.addEventListener("focusin", () => map.highlight(s.city_id));
  if (canAnswer(selfId)) li.append(answerControls(s, selfId));
  return li;
}

function answerControls(s, selfId) {
  const noteId = `note-${s.city_id}`;
  const answer = el("p", { class: "answer", role: "status", "aria-live": "polite" });
  const error = el("p", { class: "error", role: "alert", hidden: true });
  const note = el("input", { type: "text", id: noteId, maxlength: "2000", autocomplete: "off" });
  const buttons = Object.entries(STATUS).map(([status, label]) =>
    el("button", {
      type: "button",
      class: status === "interested" ? "" : "secondary",
      "aria-pressed": "false",
      dataset: { status },
      "aria-label": `${label}: ${s.name}`,
      text: label,
      on: { click: () => send(status) },
    }),
  );
  async function send(status) {
    hideError(error);
    for (const b of buttons) b.disabled = true;
    try {
      const body = { partner_id: s.city_id, status };
      if (note.value.trim()) body.note = note.value.trim();
      await api(`/v1/cities/${encodeURIComponent(selfId)}/interests`, { method: "POST", body });
      for (const b of buttons) b.setAttribute("aria-pressed", String(b.dataset.status === status));
      answer.textContent = `Saved: ${STATUS[status].toLowerCase()}. The secretariat can see your answer.`;
      if (!$("#answers").hidden) loadAnswers();
    } catch (err) {
      showError(error, err, "Not saved: ");
    } finally {
      for (const b of buttons) b.disabled = false;
    }
  }
  return el(
    "div",
    { class: "answer-box" },
    el("details", {}, el("summary", { text: "Add a note (optional)" }), el("div", { class: "field" }, el("label", { for: noteId, text: `Note about ${s.name} for the secretariat` }), note)),
    el("div", { class: "row" }, buttons),
    answer,
    error,
  );
}

const ANSWERED = { interested: "you answered interested", not_for_us: "you answered not for us" };

function renderSuggested(items) {
  $("#suggested-box").hidden = false;
  $("#suggested").replaceChildren(
    ...(items.length
      ? items.map((s) => el(
        "li",
        { dataset: { id: s.partner_id } },
        el("strong", { text: s.name }),
        ` — suggested ${s.times === 1 ? `on ${s.first_on}` : `${s.times} times, first on ${s.first_on}, last on ${s.last_on}`} (rank ${s.rank}); ${ANSWERED[s.answer] || "no answer yet"}`,
      ))
      : [el("li", { class: "empty", text: "Nothing remembered as suggested to you yet." })]),
  );
}

const STEPS = {
  introduced: "Introduced",
  meeting_held: "Meeting held",
  project_started: "Project started",
  partnership_signed: "Partnership signed",
  no_further_contact: "No further contact",
};

function renderMutual(matches) {
  $("#mutual").replaceChildren(
    ...(matches.length
      ? matches.map((m) => el(
        "li",
        { class: "match", dataset: { pair: `${m.city_a}|${m.city_b}` } },
        el("strong", { text: `${m.name_a} and ${m.name_b}` }),
        " ",
        el("span", { class: "badge ok", text: "mutual match" }),
        " ",
        el("span", { class: "badge", text: m.status ? STEPS[m.status] : "Not introduced yet" }),
        m.follow_up_due ? [" ", el("span", { class: "badge warn", text: "Ask how it went" })] : null,
        ...m.reasons.slice(1).map((r) => el("div", { class: "note", text: r.text })),
        me.role === "admin" ? stepForm(m) : null,
      ))
      : [el("li", { class: "empty", text: "No mutual matches yet." })]),
  );
}

/** The secretariat's next step for a match: what happened, when, and a note. */
function stepForm(m) {
  const pair = `${m.name_a} and ${m.name_b}`;
  const step = el("select", { "aria-label": `Next step for ${pair}` },
    Object.entries(STEPS).map(([value, text]) => el("option", { value, text })));
  const on = el("input", { type: "date", "aria-label": `Date of the step for ${pair}`, value: new Date().toISOString().slice(0, 10) });
  const note = el("input", { type: "text", maxlength: "2000", "aria-label": `Note on the step for ${pair}` });
  const error = el("p", { class: "error", role: "alert", hidden: true });
  const form = el("form", { class: "inline" }, step, " ", on, " ", note, " ", el("button", { type: "submit", text: "Record step" }), error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    hideError(error);
    try {
      await api("/v1/interests/mutual/status", {
        method: "POST",
        body: { city_a: m.city_a, city_b: m.city_b, status: step.value, on: on.value || null, note: note.value.trim() || null },
      });
      loadAnswers();
    } catch (err) {
      showError(error, err, "Could not record the step: ");
    }
  });
  return form;
}

async function loadAnswers() {
  const body = $("#answers-table tbody");
  try {
    let rows;
    if (me.role === "coordinator") {
      const mine = await api(`/v1/cities/${encodeURIComponent(me.city_id)}/interests`);
      renderMutual(mine.mutual);
      renderSuggested(mine.suggested);
      rows = [...mine.given, ...mine.received];
    } else {
      const [all, mutual] = await Promise.all([api("/v1/interests"), api("/v1/interests/mutual")]);
      renderMutual(mutual);
      rows = all;
    }
    hideError($("#answers-error"));
    if (!rows.length) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: "4", class: "empty", text: "No answers yet." })));
      return;
    }
    body.replaceChildren(
      ...rows.map((r) =>
        el(
          "tr",
          {},
          el("td", { text: (cities.get(r.city_id) || {}).name || r.city_id }),
          el("td", { text: (cities.get(r.partner_id) || {}).name || r.partner_id }),
          el("td", {}, el("span", { class: `badge ${r.status === "interested" ? "ok" : "warn"}`, text: STATUS[r.status] || r.status })),
          el("td", { text: r.note || "" }),
        ),
      ),
    );
  } catch (err) {
    showError($("#answers-error"), err, "Could not load the answers: ");
  }
}

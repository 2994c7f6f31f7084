// Cluster planner: propose (POST /v1/clusters/proposals), adjust by moving cities (drag
// and drop, or the "Move to" list), re-check after every move (…/evaluate), lock cities
// and propose again, accept (…/accept); accepted clusters from GET /v1/clusters.

import {
  $, $$, GREY, PALETTE, api, apiAll, citiesById, countryName, el, fixed, hideError, languageName,
  listWords, num, params, plural, reasonList, say, showError, start, themesById, withBusy,
} from "./common.js";
import { WorldMap } from "./map.js";

const OUT = "__out__"; // the "not in any cluster" column
const CHECK_NAMES = {
  size_bounds: "Cluster sizes",
  size: "Cluster sizes",
  multi_country: "Not one country only",
  multi_network: "Not one national network only",
  capacity: "Clusters per city",
  max_per_city: "Clusters per city",
  lead: "A lead city in each cluster",
  common_language: "A shared working language",
  language: "A shared working language",
  mixed_membership: "Mixed membership",
  single_country: "Not one country only",
  not_single_country: "Not one country only",
  single_network: "Not one national network only",
  not_single_network: "Not one national network only",
  locked: "Kept cities stay together",
  excluded: "Left-out cities stay out",
  n_clusters: "Number of clusters",
  max_span: "Within the widest distance",
  keep_apart: "Kept-apart cities stay apart",
};
const STATE_WORDS = { satisfied: "✓ met", violated: "✗ broken", relaxed: "~ relaxed" };

let me = null;
let cities = new Map();
let themes = new Map();
let map = null;
const plan = {
  proposal: null, // the proposal as the server returned it
  clusters: [], // the working copy: {id, kind, theme_ids, members, lead_city, working_languages, score, reasons, locked:Set, chosen_lead, lead_request}
  unassigned: [], // [{city_id, reason}]
  constraints: [],
  moved: new Set(),
  editable: false,
  seq: 0,
  evaluating: null,
};
const excluded = new Set();
let defaultSpan = { geographic: null, thematic: null }; // km, from GET /v1/clusters/proposals/defaults

start(async (who) => {
  me = who;
  plan.editable = me.role === "admin";
  map = new WorldMap($("#map"), { label: "Map of the proposed clusters" });
  try {
    [cities, themes] = await Promise.all([citiesById(), themesById()]);
  } catch (err) {
    showError($("#error"), err, "Could not load the network: ");
    return;
  }
  if (plan.editable) setUpRules();
  else {
    $("#rules").hidden = true;
    $("#readonly").hidden = false;
  }
  $("#open").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const id = $("#proposal-id").value.trim();
    if (id) openProposal(id);
  });
  $("#repropose").addEventListener("click", () => propose(true));
  $("#accept").addEventListener("click", accept);
  map.render({ points: [] });
  loadAccepted();
  loadSaved();
  const wanted = params().get("proposal");
  if (wanted) openProposal(wanted);
});

// ---------------------------------------------------------------- rules form

function setUpRules() {
  const box = $("#themes");
  box.replaceChildren(
    ...[...themes.values()].sort((a, b) => a.name.localeCompare(b.name)).map((t) =>
      el("label", { class: "check" }, el("input", { type: "checkbox", name: "theme", value: t.id }), el("span", { text: t.name })),
    ),
  );
  for (const radio of $$('input[name="kind"]')) {
    radio.addEventListener("change", () => {
      kindChanged();
      spanForKind();
    });
  }
  const pick = $("#exclude-pick");
  pick.append(...[...cities.values()].sort((a, b) => a.name.localeCompare(b.name)).map((c) => el("option", { value: c.id, text: `${c.name} (${countryName(c.country)})` })));
  $("#exclude-add").addEventListener("click", () => {
    if (pick.value) {
      excluded.add(pick.value);
      pick.value = "";
      drawExcluded();
    }
  });
  $("#rules").addEventListener("submit", (ev) => {
    ev.preventDefault();
    propose(false);
  });
  loadDefaults();
}

async function loadDefaults() {
  try {
    const d = await api("/v1/clusters/proposals/defaults");
    defaultSpan = d.max_span_km || defaultSpan;
  } catch (err) {
    showError($("#rules-error"), err, "Could not load the default rules: ");
    return;
  }
  $("#max-span-default").textContent = defaultSpan.geographic === null ? "no limit" : num(defaultSpan.geographic, 0);
  if (!plan.proposal) spanForKind(); // an opened proposal shows its own span
}

/** The span field shows the default of the kind chosen (empty: no limit). */
function spanForKind() {
  const kind = $('input[name="kind"]:checked').value;
  const span = defaultSpan[kind];
  $("#max-span").value = span === null || span === undefined ? "" : span;
  $("#max-span").placeholder = kind === "thematic" ? "No limit" : "";
}

function kindChanged() {
  const thematic = $('input[name="kind"]:checked').value === "thematic";
  for (const box of $$('#themes input[name="theme"]')) box.disabled = !thematic;
  $("#themes-box").disabled = !thematic;
}

function drawExcluded() {
  $("#excluded").replaceChildren(
    ...[...excluded].map((id) => {
      const name = (cities.get(id) || {}).name || id;
      return el(
        "li",
        {},
        name,
        el("button", { type: "button", "aria-label": `Stop leaving out ${name}`, title: "Remove", text: "×", on: { click: () => { excluded.delete(id); drawExcluded(); } } }),
      );
    }),
  );
}

function request(keepLocks) {
  const kind = $('input[name="kind"]:checked').value;
  const chosen = $$('#themes input[name="theme"]:checked').map((b) => b.value);
  const minSize = Number($("#min-size").value);
  const maxSize = Number($("#max-size").value);
  const perCity = $("#max-per-city").value.trim();
  const problems = [];
  if (!Number.isInteger(minSize) || minSize < 2) problems.push("Smallest cluster: give a whole number of 2 or more.");
  if (!Number.isInteger(maxSize) || maxSize < minSize) problems.push("Largest cluster: give a whole number no smaller than the smallest cluster.");
  if (perCity && !(Number.isInteger(Number(perCity)) && Number(perCity) >= 1 && Number(perCity) <= 10)) problems.push("Clusters per city: give a whole number from 1 to 10, or leave it empty.");
  const span = $("#max-span").value.trim();
  if (span && !(Number(span) >= 0 && Number(span) <= 20100)) problems.push("Widest distance: give a number of km from 0 (no limit) to 20,100, or leave it empty.");
  if (problems.length) return { problems };
  const locked = {};
  if (keepLocks) {
    for (const c of plan.clusters) {
      const keep = c.members.filter((m) => c.locked.has(m));
      if (keep.length) locked[slotName(c)] = keep;
    }
  }
  return {
    body: {
      kind,
      themes: kind === "thematic" && chosen.length ? chosen : null,
      min_size: minSize,
      max_size: maxSize,
      max_per_city: perCity ? Number(perCity) : null,
      require_common_language: $("#common-language").checked,
      mixed_membership: $("#mixed").checked,
      allow_single_country: $("#single-country").checked,
      allow_single_network: $("#single-network").checked,
      locked,
      excluded: [...excluded],
      seed: Number($("#seed").value) || 0,
      max_span_km: span ? Number(span) : null,
      fair: $("#fair").checked,
      keep_apart: keepApart(),
    },
  };
}

/** "a, b; c, d" as [["a", "b"], ["c", "d"]] (incomplete pairs are left for the API to name). */
function keepApart() {
  return $("#keep-apart").value.split(";").map((p) => p.split(",").map((x) => x.trim()).filter(Boolean)).filter((p) => p.length);
}

// ---------------------------------------------------------------- saved proposals

async function loadSaved() {
  const box = $("#proposals");
  try {
    const { items } = await api("/v1/clusters/proposals");
    if (!items.length) {
      box.replaceChildren(el("li", { class: "note", text: "No saved proposal yet." }));
      return;
    }
    box.replaceChildren(...items.map(savedRow));
  } catch (err) {
    showError($("#saved-error"), err, "Could not list the proposals: ");
  }
}

function savedRow(p) {
  const when = (p.created || "").replace("T", " ").slice(0, 16);
  const li = el("li", { class: `saved ${p.status}`, "data-id": p.id, "data-status": p.status },
    el("span", { class: "saved-id", text: p.id }),
    el("span", { class: "badge saved-status", text: p.status }),
    el("span", { class: "note", text: ` ${p.kind}, ${plural(p.n_clusters, "cluster")}, objective ${num(p.objective, 1)}, ${when}` }),
  );
  li.append(el("button", { type: "button", class: "secondary", text: "Open", "aria-label": `Open ${p.id}`, on: { click: () => openProposal(p.id) } }));
  li.append(el("button", { type: "button", class: "secondary", text: "Compare", "aria-label": `Compare with ${p.id}`, on: { click: () => compareWith(p.id) } }));
  if (plan.editable && p.status === "proposed") {
    li.append(el("button", { type: "button", class: "secondary", text: "Discard", "aria-label": `Discard ${p.id}`, on: { click: () => discard(p.id) } }));
  }
  return li;
}

async function compareWith(other) {
  hideError($("#saved-error"));
  if (!plan.proposal) {
    showError($("#saved-error"), new Error("open a proposal first, then compare it with another"), "");
    return;
  }
  try {
    const cmp = await api(`/v1/clusters/proposals/${encodeURIComponent(plan.proposal.id)}/compare/${encodeURIComponent(other)}`);
    $("#comparison").replaceChildren(
      el("h3", { text: `${cmp.a} → ${cmp.b}` }),
      el("ul", { class: "comparison" }, cmp.reasons.map((r) => el("li", { text: r }))),
    );
  } catch (err) {
    showError($("#saved-error"), err, "Could not compare: ");
  }
}

async function discard(id) {
  hideError($("#saved-error"));
  try {
    await api(`/v1/clusters/proposals/${encodeURIComponent(id)}/discard`, { method: "POST", body: {} });
    say($("#status"), `Proposal ${id} was discarded.`);
    await loadSaved();
  } catch (err) {
    showError($("#saved-error"), err, "Could not discard: ");
  }
}

/** A lock slot: for a thematic cluster "<theme>#<cluster id>" (the theme says which pool). */
function slotName(c) {
  if (c.kind === "thematic" && c.theme_ids && c.theme_ids.length) return `${c.theme_ids[0]}#${c.id}`;
  return c.id;
}

// ---------------------------------------------------------------- proposing and opening

async function propose(keepLocks) {
  if (!plan.editable) return;
  hideError($("#rules-error"));
  hideError($("#error"));
  const { body, problems } = request(keepLocks);
  if (problems) {
    const box = $("#rules-error");
    box.hidden = false;
    box.replaceChildren(el("strong", { text: "Please check the rules: " }), el("ul", {}, problems.map((p) => el("li", { text: p }))));
    return;
  }
  setBusyButtons(true);
  try {
    const proposal = await withBusy($("#status"), "Proposing clusters… this can take a few seconds.", () => api("/v1/clusters/proposals", { method: "POST", body }));
    load(proposal);
    history.replaceState(null, "", `?proposal=${encodeURIComponent(proposal.id)}`);
    say($("#status"), `Proposal ${proposal.id} is ready: ${plural(proposal.clusters.length, "cluster")}.`);
    loadSaved();
  } catch (err) {
    showError($("#error"), err, err.status === 409 ? "Not possible with these rules: " : "Could not propose clusters: ");
  } finally {
    setBusyButtons(false);
  }
}

async function openProposal(id) {
  hideError($("#error"));
  try {
    const proposal = await withBusy($("#status"), `Opening proposal ${id}…`, () => api(`/v1/clusters/proposals/${encodeURIComponent(id)}`));
    load(proposal);
    $("#proposal-id").value = proposal.id;
    history.replaceState(null, "", `?proposal=${encodeURIComponent(proposal.id)}`);
  } catch (err) {
    showError($("#error"), err, "Could not open the proposal: ");
  }
}

function setBusyButtons(busy) {
  for (const b of [$("#propose"), $("#repropose"), $("#accept")]) if (b) b.disabled = busy;
}

function load(proposal) {
  plan.proposal = proposal;
  plan.clusters = proposal.clusters.map((c) => ({ ...c, members: [...c.members], locked: new Set() }));
  // cities that were kept in place: by the slot each cluster reports, else by membership
  const locks = (proposal.params && proposal.params.locked) || {};
  for (const [slot, ids] of Object.entries(locks)) {
    const home =
      plan.clusters.find((c) => c.locked_slot === slot) ||
      plan.clusters.find((c) => ids.every((m) => c.members.includes(m)) && (c.kind !== "thematic" || !c.theme_ids || c.theme_ids[0] === slot.split("#")[0]));
    if (home) for (const m of ids) if (home.members.includes(m)) home.locked.add(m);
  }
  plan.unassigned = (proposal.unassigned || []).map((u) => ({ city_id: u.city_id, reason: u.reason, kind: u.kind || "" }));
  plan.constraints = proposal.constraints || [];
  plan.moved = new Set();
  $("#accept-result").replaceChildren();
  hideError($("#accept-error"));
  $("#actions").hidden = !plan.editable;
  if (plan.editable && proposal.params) fillRules(proposal.params);
  draw();
}

function fillRules(p) {
  const kind = $(`input[name="kind"][value="${p.kind === "geographic" ? "geographic" : "thematic"}"]`);
  if (kind) kind.checked = true;
  const chosen = new Set(p.themes || []);
  for (const b of $$('#themes input[name="theme"]')) b.checked = chosen.has(b.value);
  kindChanged();
  if (p.min_size) $("#min-size").value = p.min_size;
  if (p.max_size) $("#max-size").value = p.max_size;
  $("#max-per-city").value = p.max_per_city === null || p.max_per_city === undefined ? "" : p.max_per_city;
  if (p.require_common_language !== undefined) $("#common-language").checked = !!p.require_common_language;
  if (p.mixed_membership !== undefined) $("#mixed").checked = !!p.mixed_membership;
  $("#single-country").checked = !!p.allow_single_country;
  $("#single-network").checked = !!p.allow_single_network;
  excluded.clear();
  for (const id of p.excluded || []) excluded.add(id);
  drawExcluded();
  if (p.seed !== undefined && p.seed !== null) $("#seed").value = p.seed;
  $("#max-span").value = p.max_span_km === null || p.max_span_km === undefined ? (p.kind === "geographic" ? 0 : "") : p.max_span_km;
  $("#fair").checked = !!p.fair;
}

// ---------------------------------------------------------------- drawing

const nameOf = (id) => (cities.get(id) || {}).name || id;
const themeNames = (ids) => listWords((ids || []).map((t) => (themes.get(t) || {}).name || t));

function clusterTitle(c, i) {
  const what = c.kind === "geographic" || !(c.theme_ids && c.theme_ids.length) ? "Geographic" : themeNames(c.theme_ids);
  return `Cluster ${i + 1}: ${what}`;
}

function colourOf(i) {
  return PALETTE[i % PALETTE.length];
}

function draw() {
  drawSummary();
  drawConstraints();
  drawColumns();
  drawMap();
  drawActions();
}

function drawSummary() {
  const p = plan.proposal;
  const placed = new Set(plan.clusters.flatMap((c) => c.members));
  const bits = [
    `Proposal ${p.id}`,
    plural(plan.clusters.length, "cluster"),
    `${plural(placed.size, "city", "cities")} placed`,
    `${plural(plan.unassigned.length, "city", "cities")} not in any cluster`,
  ];
  if (p.method) bits.push(`method: ${p.method}`);
  if (plan.moved.size) bits.push(`${plural(plan.moved.size, "city", "cities")} moved by you`);
  const m = p.metrics || {};
  if (m.max_span_km !== undefined) bits.push(`no cluster wider than ${num(m.max_span_km, 0)} km`);
  $("#plan-summary").textContent = bits.join(" · ");
  drawFairness(p);
  drawLimited(p);
}

/** Cities whose accepted clusters of the running period left them less room, and why. */
function drawLimited(p) {
  const limited = Object.entries(p.limited || {});
  $("#limited").hidden = !limited.length;
  $("#limited-title").textContent = `${plural(limited.length, "city", "cities")} limited by the clusters they already run`;
  $("#limited-list").replaceChildren(
    ...limited.map(([id, why]) => el("li", { text: `${nameOf(id)}: ${why}` })),
  );
}

/** The price of fairness: the worst-off city's benefit and the total, with and without. */
function drawFairness(p) {
  const box = $("#fairness");
  const m = p.metrics || {};
  box.hidden = !p.fair;
  if (!p.fair) return;
  box.textContent = [
    "Fair: the worst-off city was raised first",
    `worst-off benefit ${num(m.worst_benefit, 3)} (${num(m.plain_worst_benefit, 3)} without fair)`,
    `total ${num(p.objective, 2)} (${num(m.plain_objective, 2)} without fair: price of fairness ${num(m.price_of_fairness, 2)})`,
  ].join(" · ");
}

function drawConstraints() {
  const list = $("#constraints");
  if (!plan.constraints.length) {
    list.replaceChildren(el("li", { class: "empty", text: "No checks reported." }));
    return;
  }
  list.replaceChildren(
    ...plan.constraints.map((c) =>
      el(
        "li",
        { class: `constraint state-${c.status}`, dataset: { name: c.name, status: c.status } },
        el("span", { class: `badge state-${c.status}`, text: STATE_WORDS[c.status] || c.status }),
        " ",
        el("strong", { text: CHECK_NAMES[c.name] || c.name.replace(/_/g, " ") }),
        el("div", { class: "detail", text: c.detail || counts(c) }),
      ),
    ),
  );
}

function counts(c) {
  const bits = [];
  if (c.satisfied) bits.push(`${num(c.satisfied, 0)} met`);
  if (c.violated) bits.push(`${num(c.violated, 0)} broken`);
  if (c.relaxed) bits.push(`${num(c.relaxed, 0)} relaxed`);
  return bits.join(", ");
}

function drawColumns() {
  const box = $("#columns");
  const columns = plan.clusters.map((c, i) => column(c, i));
  columns.push(outColumn());
  box.replaceChildren(...columns);
}

function column(c, i) {
  const id = `cluster-${i}`;
  const lead = c.lead_city && c.members.includes(c.lead_city) ? nameOf(c.lead_city) : "to be chosen";
  const facts = [
    plural(c.members.length, "city", "cities"),
    `lead: ${lead}`,
    `languages: ${c.working_languages && c.working_languages.length ? listWords(c.working_languages.map(languageName)) : "none shared"}`,
  ];
  if (c.score !== undefined && c.score !== null) facts.push(`cohesion ${fixed(c.score, 2)}`);
  const section = el(
    "section",
    { class: "column", "aria-labelledby": `${id}-title`, dataset: { cluster: c.id }, style: { "--swatch": colourOf(i) } },
    el(
      "header",
      {},
      el("h3", { id: `${id}-title`, text: clusterTitle(c, i) }),
      el("p", { class: "facts", text: facts.join(" · ") }),
      plan.editable && c.members.length ? leadChoice(c, i) : null,
      c.lead_request && !c.lead_request.honoured ? el("p", { class: "error lead-refusal", text: c.lead_request.reason }) : null,
      c.reasons && c.reasons.length ? el("details", {}, el("summary", { text: "Why these cities" }), reasonList(c.reasons, { weights: false })) : null,
    ),
    el("ul", { class: "members", "aria-label": `Cities in ${clusterTitle(c, i)}` }, c.members.map((m) => memberCard(m, c, i))),
  );
  if (plan.editable) dropTarget(section, c.id);
  return section;
}

// The planner's lead for a cluster: sent with every re-check (and the acceptance) while it is
// a member; the answer's lead_request says when it cannot lead, and who could instead.
function leadChoice(c, i) {
  const id = `lead-${i}`;
  const title = clusterTitle(c, i);
  const select = el(
    "select",
    { id, class: "lead-pick" },
    el("option", { value: "", text: "chosen by iccmatch" }),
    c.members.map((m) => el("option", { value: m, text: nameOf(m), selected: c.chosen_lead === m })),
  );
  select.addEventListener("change", () => {
    c.chosen_lead = select.value || null;
    evaluate(c.chosen_lead ? `${nameOf(c.chosen_lead)} chosen to lead ${title}.` : `The lead of ${title} left to iccmatch.`);
  });
  return el("div", { class: "field lead-choice" }, el("label", { for: id }, "Lead city", el("span", { class: "visually-hidden", text: ` of ${title}` })), select);
}

function outColumn() {
  // cities that simply do not care about the chosen themes are many and rarely moved: fold them
  const folded = plan.unassigned.filter((u) => u.kind === "no_theme");
  const shown = plan.unassigned.filter((u) => u.kind !== "no_theme");
  const card = (u) => memberCard(u.city_id, null, -1, u.reason);
  const section = el(
    "section",
    { class: "column unassigned", "aria-labelledby": "out-title", dataset: { cluster: OUT } },
    el("header", { style: { "--swatch": GREY } }, el("h3", { id: "out-title", text: `Not in any cluster (${plan.unassigned.length})` }), el("p", { class: "facts", text: "Cities left out, and why. Move one into a cluster to add it." })),
    el("ul", { class: "members", "aria-label": "Cities not in any cluster" }, shown.map(card)),
    folded.length
      ? el(
          "details",
          { class: "others" },
          el("summary", { text: `${plural(folded.length, "city", "cities")} that do not prioritise these themes` }),
          el("ul", { class: "members", "aria-label": "Cities that do not prioritise these themes" }, folded.map(card)),
        )
      : null,
  );
  if (plan.editable) dropTarget(section, OUT);
  return section;
}

function memberCard(cityId, cluster, index, reason = "") {
  const city = cities.get(cityId) || { name: cityId };
  const from = cluster ? cluster.id : OUT;
  const isLead = cluster && cluster.lead_city === cityId;
  const facts = [countryName(city.country), city.membership === "national" ? "national network" : "international"];
  const li = el(
    "li",
    { class: `member${plan.moved.has(cityId) ? " moved" : ""}`, dataset: { city: cityId, from } },
    el("div", {}, el("span", { class: "name", text: city.name }), isLead ? el("span", { class: "badge ok", text: "lead" }) : null),
    el("div", { class: "why", text: facts.join(" · ") }),
    reason ? el("div", { class: "why reason", text: reason }) : null,
  );
  if (!plan.editable) return li;
  li.draggable = true;
  li.addEventListener("dragstart", (ev) => {
    ev.dataTransfer.setData("text/plain", JSON.stringify({ city: cityId, from }));
    ev.dataTransfer.effectAllowed = "move";
    li.classList.add("dragging");
  });
  li.addEventListener("dragend", () => li.classList.remove("dragging"));
  const controls = el("div", { class: "controls" });
  if (cluster) {
    const lockId = `lock-${from}-${cityId}`;
    const box = el("input", { type: "checkbox", id: lockId, checked: cluster.locked.has(cityId) });
    box.addEventListener("change", () => {
      if (box.checked) cluster.locked.add(cityId);
      else cluster.locked.delete(cityId);
      drawActions();
    });
    controls.append(el("span", { class: "check" }, box, el("label", { for: lockId }, "Keep here", el("span", { class: "visually-hidden", text: `: ${city.name} in ${clusterTitle(cluster, index)}` }))));
  }
  const selectId = `move-${from}-${cityId}`;
  const options = [el("option", { value: "", text: cluster ? "stay here" : "stay out" })];
  plan.clusters.forEach((c, i) => {
    if (c.id !== from && !c.members.includes(cityId)) options.push(el("option", { value: c.id, text: clusterTitle(c, i) }));
  });
  if (cluster) options.push(el("option", { value: OUT, text: "Not in any cluster" }));
  const select = el("select", { id: selectId, class: "move" }, options);
  select.addEventListener("change", () => {
    if (select.value) move(cityId, from, select.value, { focus: true });
  });
  controls.append(el("label", { for: selectId }, "Move to", el("span", { class: "visually-hidden", text: ` (${city.name})` })), select);
  li.append(controls);
  return li;
}

function dropTarget(section, target) {
  section.addEventListener("dragover", (ev) => {
    ev.preventDefault();
    ev.dataTransfer.dropEffect = "move";
    section.classList.add("drop");
  });
  section.addEventListener("dragleave", (ev) => {
    if (!section.contains(ev.relatedTarget)) section.classList.remove("drop");
  });
  section.addEventListener("drop", (ev) => {
    ev.preventDefault();
    section.classList.remove("drop");
    let data = null;
    try {
      data = JSON.parse(ev.dataTransfer.getData("text/plain"));
    } catch {
      return;
    }
    if (data && data.city && data.from !== target) move(data.city, data.from, target, { focus: false });
  });
}

function drawMap() {
  const points = [];
  const links = [];
  plan.clusters.forEach((c, i) => {
    const colour = colourOf(i);
    const lead = cities.get(c.lead_city);
    for (const m of c.members) {
      const city = cities.get(m);
      if (!city) continue;
      points.push({ id: m, lat: city.lat, lon: city.lon, color: colour, r: m === c.lead_city ? 7 : 5, title: `${city.name}: ${clusterTitle(c, i)}${m === c.lead_city ? " (lead)" : ""}` });
      if (lead && m !== c.lead_city) links.push({ from: [lead.lon, lead.lat], to: [city.lon, city.lat], color: colour, width: 1.4 });
    }
  });
  for (const u of plan.unassigned) {
    const city = cities.get(u.city_id);
    if (city) points.unshift({ id: u.city_id, lat: city.lat, lon: city.lon, color: GREY, r: 3, title: `${city.name}: not in any cluster` });
  }
  map.setLabel(`Map of ${plural(plan.clusters.length, "cluster")}: each cluster in its colour, lines from its lead city; grey cities are in no cluster`);
  map.render({ points, links, fit: points.filter((p) => p.color !== GREY) });
}

function drawActions() {
  if (!plan.editable || !plan.proposal) return;
  const locks = plan.clusters.reduce((n, c) => n + c.members.filter((m) => c.locked.has(m)).length, 0);
  $("#repropose").textContent = locks ? `Propose again, keeping ${plural(locks, "city", "cities")} in place` : "Propose again";
  $("#accept").textContent = `Accept these ${plural(plan.clusters.length, "cluster")}`;
  const broken = plan.constraints.filter((c) => c.status === "violated");
  $("#accept-note").textContent = broken.length
    ? `${plural(broken.length, "check is", "checks are")} broken (${listWords(broken.map((c) => CHECK_NAMES[c.name] || c.name))}). You can still accept, but consider moving cities first.`
    : "Every check is met.";
}

// ---------------------------------------------------------------- moving and checking

function move(cityId, from, to, { focus }) {
  const source = plan.clusters.find((c) => c.id === from);
  const target = plan.clusters.find((c) => c.id === to);
  if (target && target.members.includes(cityId)) {
    say($("#status"), `${nameOf(cityId)} is already in that cluster.`);
    return;
  }
  if (source) {
    source.members = source.members.filter((m) => m !== cityId);
    source.locked.delete(cityId);
    if (source.lead_city === cityId) source.lead_city = null;
    if (source.chosen_lead === cityId) source.chosen_lead = null;
  } else {
    plan.unassigned = plan.unassigned.filter((u) => u.city_id !== cityId);
  }
  if (target) target.members.push(cityId);
  else if (!plan.clusters.some((c) => c.members.includes(cityId)) && !plan.unassigned.some((u) => u.city_id === cityId)) {
    plan.unassigned.unshift({ city_id: cityId, reason: "Taken out by you", kind: "user" });
  }
  plan.moved.add(cityId);
  const where = target ? clusterTitle(target, plan.clusters.indexOf(target)) : "no cluster";
  draw();
  if (focus) {
    const card = document.querySelector(`.column[data-cluster="${CSS.escape(to)}"] .member[data-city="${CSS.escape(cityId)}"] select.move`);
    if (card) card.focus();
  }
  evaluate(`${nameOf(cityId)} moved to ${where}.`);
}

function wire(c) {
  const out = { id: c.id, members: [...c.members], theme_ids: [...(c.theme_ids || [])] };
  // only the planner's own choice: a lead sent is a lead asked for ("as the planner chose")
  if (c.chosen_lead && c.members.includes(c.chosen_lead)) out.lead_city = c.chosen_lead;
  return out;
}

async function evaluate(what) {
  const seq = ++plan.seq;
  if (plan.evaluating) plan.evaluating.abort();
  const ctrl = new AbortController();
  plan.evaluating = ctrl;
  hideError($("#error"));
  $("#constraints").setAttribute("aria-busy", "true");
  try {
    const result = await withBusy($("#status"), `${what} Checking the rules…`, () =>
      api(`/v1/clusters/proposals/${encodeURIComponent(plan.proposal.id)}/evaluate`, { method: "POST", body: { clusters: plan.clusters.map(wire) }, signal: ctrl.signal }),
    );
    if (seq !== plan.seq) return;
    const byId = new Map((result.clusters || []).map((c) => [c.id, c]));
    for (const c of plan.clusters) {
      const fresh = byId.get(c.id);
      if (!fresh) continue;
      for (const k of ["score", "reasons", "lead_city", "working_languages", "components"]) if (k in fresh) c[k] = fresh[k];
      c.lead_request = fresh.lead_request || null;
    }
    const reasons = new Map((result.unassigned || []).map((u) => [u.city_id, u.reason]));
    for (const u of plan.unassigned) if (reasons.has(u.city_id) && u.reason !== "Taken out by you") u.reason = reasons.get(u.city_id);
    plan.constraints = result.constraints || [];
    const active = document.activeElement && document.activeElement.id;
    draw();
    if (active) {
      const again = document.getElementById(active);
      if (again) again.focus();
    }
    const broken = plan.constraints.filter((c) => c.status === "violated").length;
    say($("#status"), `${what} Checks updated: ${broken ? `${plural(broken, "check")} broken` : "every check is met"}.`);
  } catch (err) {
    if (err.name === "AbortError") return;
    if (seq === plan.seq) showError($("#error"), err, "Could not check the clusters: ");
  } finally {
    if (seq === plan.seq) {
      plan.evaluating = null;
      $("#constraints").removeAttribute("aria-busy");
    }
  }
}

// ---------------------------------------------------------------- accepting

async function accept() {
  if (!plan.proposal) return;
  hideError($("#accept-error"));
  const body = { clusters: plan.clusters.filter((c) => c.members.length).map(wire) };
  const period = $("#period").value.trim();
  if (period) body.period = period;
  setBusyButtons(true);
  try {
    const result = await withBusy($("#status"), "Accepting the clusters…", () =>
      api(`/v1/clusters/proposals/${encodeURIComponent(plan.proposal.id)}/accept`, { method: "POST", body }),
    );
    const names = (result.accepted || []).map((c) => c.name || c.id);
    $("#accept-result").replaceChildren(
      el("p", { class: "success" }, el("strong", { text: `Accepted ${plural(names.length, "cluster")}: ` }), listWords(names), ". ", el("a", { href: "/experts", text: "Assign experts to them" })),
    );
    say($("#status"), "");
    await loadAccepted();
  } catch (err) {
    showError($("#accept-error"), err, "Not accepted: ");
  } finally {
    setBusyButtons(false);
  }
}

async function loadAccepted() {
  const body = $("#accepted tbody");
  try {
    const [rows, outcomes] = await Promise.all([apiAll("/v1/clusters"), apiAll("/v1/outcomes")]);
    hideError($("#accepted-error"));
    if (!rows.length) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: "8", class: "empty", text: "No cluster accepted yet." })));
      return;
    }
    const rated = new Map(outcomes.filter((o) => !o.expert_id && !o.city_id).map((o) => [o.cluster_id, o]));
    body.replaceChildren(
      ...rows.map((c) =>
        el(
          "tr",
          { dataset: { id: c.id } },
          el("th", { scope: "row", text: c.name || c.id }),
          el("td", { text: c.kind === "geographic" ? "geographic" : themeNames(c.theme_ids) }),
          el("td", { text: listWords((c.members || []).map(nameOf)) }),
          el("td", { text: c.lead_city ? nameOf(c.lead_city) : "" }),
          el("td", { text: listWords((c.working_languages || []).map(languageName)) }),
          el("td", { text: c.period || "" }),
          el("td", { text: c.accepted_on || "" }),
          el("td", {}, outcomeCell(c, rated.get(c.id))),
        ),
      ),
    );
  } catch (err) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: "8", class: "empty", text: "Could not load the accepted clusters." })));
    showError($("#accepted-error"), err, "Could not load the accepted clusters: ");
  }
}

/** The secretariat's rating of a cluster at the end of its period, and (admins) a form to give it. */
function outcomeCell(cluster, outcome) {
  const shown = outcome
    ? el("span", { class: "outcome", text: `${outcome.rating}/5 on ${outcome.on}${outcome.note ? `: ${outcome.note}` : ""}` })
    : el("span", { class: "outcome empty", text: "Not rated yet" });
  if (me.role !== "admin") return shown;
  const label = cluster.name || cluster.id;
  const rating = el("select", { "aria-label": `Rating for ${label}` },
    [5, 4, 3, 2, 1].map((n) => el("option", { value: String(n), text: `${n}/5` })));
  const note = el("input", { type: "text", maxlength: "2000", "aria-label": `Outcome note for ${label}` });
  const error = el("p", { class: "error", role: "alert", hidden: true });
  const form = el("form", { class: "inline" }, rating, " ", note, " ", el("button", { type: "submit", text: "Record outcome" }), error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    hideError(error);
    try {
      await api(`/v1/clusters/${encodeURIComponent(cluster.id)}/outcomes`, {
        method: "POST",
        body: { rating: Number(rating.value), note: note.value.trim() || null },
      });
      loadAccepted();
    } catch (err) {
      showError(error, err, "Could not record the outcome: ");
    }
  });
  return [shown, form];
}

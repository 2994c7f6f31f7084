// Experts: assign experts to accepted clusters (POST /v1/experts/assignments) and show the
// pairs with their reasons, the load of each expert, and what could not be served. The
// planner may fix experts for clusters and add conflicts for one run; the conflicts stored in
// the network (GET /v1/expert-conflicts) always apply and are listed, by name.

import {
  $, $$, api, apiAll, cached, citiesById, countryName, el, fixed, hideError, listWords, num, plural,
  reasonList, say, showError, start, themesById, withBusy,
} from "./common.js";

let me = null;
let clusters = [];
let cities = new Map();
let themes = new Map();
let experts = new Map();
const fixedPairs = []; // [{expert_id, cluster_id}] kept when the rules allow
const runConflicts = []; // [{expert_id, city_id, reason}] for the next runs of this page only

start(async (who) => {
  me = who;
  loadStored();
  if (me.role !== "admin") {
    $("#assign").hidden = true;
    $("#readonly").hidden = false;
    return;
  }
  // The same-country rule: the server's setting until the user chooses (shown half-ticked).
  $("#same-country").indeterminate = true;
  try {
    [clusters, cities, themes, experts] = await Promise.all([apiAll("/v1/clusters"), citiesById(), themesById(), expertsById()]);
  } catch (err) {
    showError($("#form-error"), err, "Could not load the accepted clusters: ");
    $("#cluster-list").replaceChildren(el("p", { class: "empty", text: "No clusters could be loaded." }));
    return;
  }
  drawClusters();
  setUpPlannerInputs();
  $("#all").addEventListener("click", () => tick(true));
  $("#none").addEventListener("click", () => tick(false));
  $("#same-country").addEventListener("change", () => {
    $("#same-country").dataset.chosen = "yes";
  });
  $("#assign").addEventListener("submit", (ev) => {
    ev.preventDefault();
    run();
  });
  // usable once everything above is wired (a click before would do nothing)
  $("#run").disabled = !clusters.length;
});

const themeNames = (ids) => listWords((ids || []).map((t) => (themes.get(t) || {}).name || t));
const cityName = (id) => (cities.get(id) || {}).name || id;
const expertName = (id) => (experts.get(id) || {}).name || id;
const byName = (a, b) => String(a.name || a.id).localeCompare(String(b.name || b.id));

async function expertsById() {
  const rows = await cached("/v1/experts");
  return new Map(rows.map((e) => [e.id, e]));
}

// ---------------------------------------------------------------- stored conflicts (read only)

async function loadStored() {
  const list = $("#stored-conflicts");
  try {
    const [rows, cityMap, expertMap] = await Promise.all([apiAll("/v1/expert-conflicts"), citiesById(), expertsById()]);
    hideError($("#stored-error"));
    const named = rows
      .map((r) => ({ ...r, expert_name: (expertMap.get(r.expert_id) || {}).name || r.expert_id, city_name: (cityMap.get(r.city_id) || {}).name || r.city_id }))
      .sort((a, b) => a.expert_name.localeCompare(b.expert_name) || a.city_name.localeCompare(b.city_name));
    list.replaceChildren(
      ...(named.length
        ? named.map((r) =>
            el(
              "li",
              { class: "stored-conflict", dataset: { expert: r.expert_id, city: r.city_id } },
              el("span", { class: "expert-name", text: r.expert_name }),
              " serves no cluster with ",
              el("span", { class: "city-name", text: r.city_name }),
              el("span", { class: "reason", text: `: ${r.reason}` }),
            ),
          )
        : [el("li", { class: "empty", text: "No conflict is stored." })]),
    );
  } catch (err) {
    list.replaceChildren();
    showError($("#stored-error"), err, "Could not load the stored conflicts: ");
  }
}

// ---------------------------------------------------------------- fixed experts and run conflicts

function options(select, placeholder, rows, label) {
  select.replaceChildren(el("option", { value: "", text: placeholder }), ...rows.map((r) => el("option", { value: r.id, text: label(r) })));
}

function setUpPlannerInputs() {
  // a fieldset is as wide as its widest option by default: keep these within the form's column
  for (const box of [$("#fixed-box"), $("#conflicts-box")]) box.style.minWidth = "0";
  for (const select of $$("#fixed-box select, #conflicts-box select")) select.style.width = "100%";
  const people = [...experts.values()].sort(byName);
  const expertLabel = (e) => (e.country ? `${e.name} (${countryName(e.country)})` : e.name);
  options($("#fixed-cluster"), "Choose a cluster…", clusters, (c) => c.name || c.id);
  options($("#fixed-expert"), "Choose an expert…", people, expertLabel);
  options($("#conflict-expert"), "Choose an expert…", people, expertLabel);
  options($("#conflict-city"), "Choose a city…", [...cities.values()].sort(byName), (c) => `${c.name} (${countryName(c.country)})`);
  $("#fixed-add").addEventListener("click", addFixed);
  $("#conflict-add").addEventListener("click", addConflict);
  $("#fixed-add").disabled = !clusters.length;
  $("#conflict-add").disabled = false;
  drawFixed();
  drawConflicts();
}

function problem(text) {
  const box = $("#form-error");
  box.hidden = false;
  box.replaceChildren(el("strong", { text: "Please check: " }), text);
}

function addFixed() {
  hideError($("#form-error"));
  const cluster = $("#fixed-cluster").value;
  const expert = $("#fixed-expert").value;
  if (!cluster || !expert) {
    problem("choose both a cluster and an expert to fix.");
    return;
  }
  if (!fixedPairs.some((f) => f.cluster_id === cluster && f.expert_id === expert)) fixedPairs.push({ expert_id: expert, cluster_id: cluster });
  $("#fixed-expert").value = "";
  drawFixed();
}

function addConflict() {
  hideError($("#form-error"));
  const expert = $("#conflict-expert").value;
  const city = $("#conflict-city").value;
  const reason = $("#conflict-reason").value.trim();
  if (!expert || !city) {
    problem("choose both an expert and a city for the conflict.");
    return;
  }
  const same = runConflicts.find((c) => c.expert_id === expert && c.city_id === city);
  if (same) same.reason = reason;
  else runConflicts.push({ expert_id: expert, city_id: city, reason });
  $("#conflict-city").value = "";
  $("#conflict-reason").value = "";
  drawConflicts();
}

function chip(text, what, drop) {
  return el("li", {}, text, el("button", { type: "button", "aria-label": `Remove ${what}`, title: "Remove", text: "×", on: { click: drop } }));
}

function drawFixed() {
  $("#fixed-list").replaceChildren(
    ...fixedPairs.map((f, i) => {
      const text = `${clusterName(f.cluster_id)}: ${expertName(f.expert_id)}`;
      const li = chip(text, `the fixed expert ${text}`, () => {
        fixedPairs.splice(i, 1);
        drawFixed();
      });
      Object.assign(li.dataset, { cluster: f.cluster_id, expert: f.expert_id });
      return li;
    }),
  );
}

function drawConflicts() {
  $("#conflict-list").replaceChildren(
    ...runConflicts.map((c, i) => {
      const text = `${expertName(c.expert_id)}: not for ${cityName(c.city_id)}${c.reason ? ` (${c.reason})` : ""}`;
      const li = chip(text, `the conflict ${text}`, () => {
        runConflicts.splice(i, 1);
        drawConflicts();
      });
      Object.assign(li.dataset, { expert: c.expert_id, city: c.city_id });
      return li;
    }),
  );
}

function drawClusters() {
  const box = $("#cluster-list");
  if (!clusters.length) {
    box.replaceChildren(el("p", { class: "empty" }, "No cluster is accepted yet. Accept some in the ", el("a", { href: "/clusters", text: "Cluster planner" }), " first."));
    $("#run").disabled = true;
    return;
  }
  box.replaceChildren(
    ...clusters.map((c) => {
      const id = `pick-${c.id}`;
      const what = c.kind === "geographic" ? "geographic" : themeNames(c.theme_ids);
      return el(
        "div",
        { class: "check" },
        el("input", { type: "checkbox", id, value: c.id, name: "cluster", checked: true }),
        el("label", { for: id }, el("span", { class: "cluster-name", text: c.name || c.id }), el("span", { class: "note", text: ` · ${what} · ${plural((c.members || []).length, "city", "cities")}${c.lead_city ? `, led by ${cityName(c.lead_city)}` : ""}` })),
      );
    }),
  );
}

function tick(on) {
  for (const b of $$('#cluster-list input[name="cluster"]')) b.checked = on;
}

async function run() {
  hideError($("#form-error"));
  hideError($("#error"));
  const picked = $$('#cluster-list input[name="cluster"]:checked').map((b) => b.value);
  const perCluster = Number($("#per-cluster").value);
  const problems = [];
  if (!picked.length) problems.push("Tick at least one cluster.");
  if (!Number.isInteger(perCluster) || perCluster < 1) problems.push("Experts per cluster: give a whole number of 1 or more.");
  if (problems.length) {
    const box = $("#form-error");
    box.hidden = false;
    box.replaceChildren(el("strong", { text: "Please check: " }), el("ul", {}, problems.map((p) => el("li", { text: p }))));
    return;
  }
  const all = picked.length === clusters.length;
  const body = { cluster_ids: all ? null : picked, per_cluster: perCluster, fair: $("#fair").checked, save: $("#save").checked };
  if ($("#same-country").dataset.chosen) body.conflict_same_country = $("#same-country").checked;
  if (fixedPairs.length) body.fixed = fixedPairs.map((f) => ({ ...f }));
  if (runConflicts.length) body.conflicts = runConflicts.map((c) => ({ ...c }));
  const button = $("#run");
  button.disabled = true;
  try {
    const result = await withBusy($("#status"), "Assigning experts…", () => api("/v1/experts/assignments", { method: "POST", body }));
    draw(result, body);
    const rule = $("#same-country");
    rule.indeterminate = false;
    rule.checked = Boolean(result.conflict_same_country);
    say($("#status"), `Done: ${plural(result.pairs.length, "pair")}.${body.save ? " Saved in the network." : ""}`);
  } catch (err) {
    showError($("#error"), err, err.status === 409 ? "Not possible as asked: " : "Could not assign experts: ");
    say($("#status"), "");
  } finally {
    button.disabled = false;
  }
}

function draw(result, body) {
  const pairs = [...result.pairs].sort((a, b) => (a.cluster_name || a.cluster_id).localeCompare(b.cluster_name || b.cluster_id) || b.score - a.score);
  const served = new Set(pairs.map((p) => p.cluster_id));
  $("#result-summary").textContent = [
    `${plural(pairs.length, "pair")} for ${plural(served.size, "cluster")}`,
    `total fit ${num(result.objective, 3)}`,
    result.fair ? "fair: the worst-served cluster was raised first" : "the best total fit possible under the experts' limits",
    `${plural(body.per_cluster, "expert")} asked per cluster`,
    result.conflict_same_country ? "no expert from a member city's country" : "experts from a member city's country allowed",
    result.worst_cluster_mean !== undefined && result.worst_cluster_mean !== null ? `worst-served cluster's mean fit ${num(result.worst_cluster_mean, 3)}` : null,
    conflictCounts(result.conflict_counts),
    ...(result.notes || []),
  ].filter(Boolean).join(" · ");
  const unserved = result.unserved || [];
  $("#unserved").replaceChildren(
    ...(unserved.length
      ? unserved.map((u) => el("li", { class: "unserved" }, el("strong", { text: `${u.cluster_name || clusterName(u.cluster_id)}: ` }), u.message || `${plural(u.missing, "expert")} missing`))
      : [el("li", { class: "success", text: "Every cluster got the experts it asked for." })]),
  );
  const planner = [
    ...(result.fixed || []).map((f) => el("li", { class: f.honoured ? "fixed" : "refused", dataset: { cluster: f.cluster_id, expert: f.expert_id }, text: f.reason })),
    ...(result.excluded || []).map((x) =>
      el("li", { class: "excluded", dataset: { cluster: x.cluster_id, expert: x.expert_id, source: x.source || "" } }, x.reason, x.source ? el("span", { class: "note", text: ` (${SOURCE_WORDS[x.source] || x.source})` }) : null),
    ),
  ];
  $("#planner").hidden = !planner.length;
  $("#planner-notes").replaceChildren(...planner);
  $("#pairs tbody").replaceChildren(
    ...(pairs.length
      ? pairs.map((p) =>
          el(
            "tr",
            { dataset: { cluster: p.cluster_id, expert: p.expert_id } },
            el("th", { scope: "row", class: "cluster-name", text: p.cluster_name || p.cluster_id }),
            el("td", { class: "expert-name", text: p.expert_name || p.expert_id }),
            el("td", { class: "num", text: fixed(p.score, 3) }),
            el("td", {}, reasonList(p.reasons)),
          ),
        )
      : [el("tr", {}, el("td", { colspan: "4", class: "empty", text: "No pair could be made." }))]),
  );
  const byExpert = new Map();
  for (const p of pairs) {
    if (!byExpert.has(p.expert_id)) byExpert.set(p.expert_id, []);
    byExpert.get(p.expert_id).push(p.cluster_name || p.cluster_id);
  }
  const loads = [...(result.loads || [])].sort((a, b) => b.assigned - a.assigned || String(a.name).localeCompare(String(b.name)));
  $("#loads tbody").replaceChildren(
    ...loads.map((l) => {
      const share = l.capacity ? Math.min(1, l.assigned / l.capacity) : 0;
      return el(
        "tr",
        { dataset: { expert: l.expert_id } },
        el("th", { scope: "row", text: l.name || l.expert_id }),
        el("td", { text: listWords(byExpert.get(l.expert_id) || []) || "–" }),
        el("td", { class: "num" }, el("span", { class: "load-bar", "aria-hidden": "true" }, el("span", { style: { width: `${Math.round(share * 100)}%` } })), num(l.assigned, 0)),
        el("td", { class: "num", text: num(l.capacity, 0) }),
      );
    }),
  );
}

const SOURCE_WORDS = { stored: "stored conflict", request: "conflict for this run", "stored and request": "stored conflict and one for this run" };

function conflictCounts(counts) {
  if (!counts) return null;
  const stored = plural(counts.stored, "stored conflict");
  return counts.request ? `${stored} and ${plural(counts.request, "conflict")} for this run applied` : `${stored} applied`;
}

function clusterName(id) {
  const c = clusters.find((x) => x.id === id);
  return c ? c.name || c.id : id;
}

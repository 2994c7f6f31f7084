// Experts: assign experts to accepted clusters (POST /v1/experts/assignments) and show the
// pairs with their reasons, the load of each expert, and what could not be served.

import {
  $, $$, api, apiAll, citiesById, el, hideError, listWords, num, plural, reasonList, say,
  showError, start, themesById, withBusy,
} from "./common.js";

let me = null;
let clusters = [];
let cities = new Map();
let themes = new Map();

start(async (who) => {
  me = who;
  if (me.role !== "admin") {
    $("#assign").hidden = true;
    $("#readonly").hidden = false;
    return;
  }
  try {
    [clusters, cities, themes] = await Promise.all([apiAll("/v1/clusters"), citiesById(), themesById()]);
  } catch (err) {
    showError($("#form-error"), err, "Could not load the accepted clusters: ");
    $("#cluster-list").replaceChildren(el("p", { class: "empty", text: "No clusters could be loaded." }));
    return;
  }
  drawClusters();
  $("#all").addEventListener("click", () => tick(true));
  $("#none").addEventListener("click", () => tick(false));
  $("#assign").addEventListener("submit", (ev) => {
    ev.preventDefault();
    run();
  });
});

const themeNames = (ids) => listWords((ids || []).map((t) => (themes.get(t) || {}).name || t));
const cityName = (id) => (cities.get(id) || {}).name || id;

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
  const button = $("#run");
  button.disabled = true;
  try {
    const result = await withBusy($("#status"), "Assigning experts…", () => api("/v1/experts/assignments", { method: "POST", body }));
    draw(result, body);
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
    result.worst_cluster_mean !== undefined && result.worst_cluster_mean !== null ? `worst-served cluster's mean fit ${num(result.worst_cluster_mean, 3)}` : null,
    ...(result.notes || []),
  ].filter(Boolean).join(" · ");
  const unserved = result.unserved || [];
  $("#unserved").replaceChildren(
    ...(unserved.length
      ? unserved.map((u) => el("li", { class: "unserved" }, el("strong", { text: `${clusterName(u.cluster_id)}: ` }), u.message || `${plural(u.missing, "expert")} missing`))
      : [el("li", { class: "success", text: "Every cluster got the experts it asked for." })]),
  );
  $("#pairs tbody").replaceChildren(
    ...(pairs.length
      ? pairs.map((p) =>
          el(
            "tr",
            { dataset: { cluster: p.cluster_id, expert: p.expert_id } },
            el("th", { scope: "row", text: p.cluster_name || p.cluster_id }),
            el("td", { class: "expert-name", text: p.expert_name || p.expert_id }),
            el("td", { class: "num", text: num(p.score, 3) }),
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

function clusterName(id) {
  const c = clusters.find((x) => x.id === id);
  return c ? c.name || c.id : id;
}

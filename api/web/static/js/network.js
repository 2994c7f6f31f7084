// Network explorer: the graph (cytoscape), the map (d3-geo), a city's profile, the
// analytics tables from /v1/network/stats, and exports from /v1/network/graph.

import {
  $, $$, GREY, PALETTE, api, countryName, download, el, hideError, languageName, listWords,
  num, params, plural, reasonList, say, showError, start, withBusy,
} from "./common.js";
import { WorldMap } from "./map.js";

const PRIORITY_COLOURS = { 5: "#08306b", 4: "#2171b5", 3: "#4292c6", 2: "#6baed6", 1: "#9ecae1" };
const state = {
  cities: new Map(), // id -> city node (+ community, priorities)
  networks: new Map(), // id -> name
  themes: new Map(), // id -> name
  ties: [], // {a, b, kind, since}
  stats: null,
  communitySize: new Map(),
  cy: null,
  map: null,
  mapDrawn: false,
  betweenness: null,
  selected: null,
};

start(async () => {
  wireTabs();
  wireExports();
  wireQuality();
  let graph;
  try {
    [graph, state.stats] = await withBusy($("#status"), "Loading the network and its analysis…", () =>
      Promise.all([api("/v1/network/graph?format=json&themes=true&networks=true"), api("/v1/network/stats")]),
    );
  } catch (err) {
    showError($("#error"), err, "Could not load the network: ");
    return;
  }
  readGraph(graph, state.stats);
  summary(state.stats);
  fillControls();
  tables(state.stats);
  drawGraph();
  const wanted = params().get("city");
  if (wanted && state.cities.has(wanted)) select(wanted);
});

// ---------------------------------------------------------------- data

function readGraph(graph, stats) {
  for (const n of graph.nodes) {
    if (n.kind === "city") state.cities.set(n.ref, { ...n, id: n.ref, priorities: [], partners: [], community: n.community });
    else if (n.kind === "network") state.networks.set(n.ref, n.label);
    else if (n.kind === "theme") state.themes.set(n.ref, n.label);
  }
  const ref = (id) => id.slice(id.indexOf(":") + 1);
  for (const e of graph.edges) {
    if (e.rel === "PARTNER_OF") {
      const a = ref(e.source);
      const b = ref(e.target);
      state.ties.push({ a, b, kind: e.kind, since: e.since });
      if (state.cities.has(a)) state.cities.get(a).partners.push({ id: b, kind: e.kind, since: e.since });
      if (state.cities.has(b)) state.cities.get(b).partners.push({ id: a, kind: e.kind, since: e.since });
    } else if (e.rel === "PRIORITISES") {
      const c = state.cities.get(ref(e.source));
      if (c) c.priorities.push({ theme: ref(e.target), priority: e.priority || 0 });
    }
  }
  // communities: from the graph when it carries them, else from the analysis
  const comms = (stats.communities && stats.communities.communities) || [];
  for (const c of comms) {
    state.communitySize.set(c.id, c.size);
    for (const id of c.city_ids) {
      const city = state.cities.get(id);
      if (city && (city.community === null || city.community === undefined)) city.community = c.id;
    }
  }
  for (const c of state.cities.values()) {
    c.priorities.sort((x, y) => y.priority - x.priority || themeName(x.theme).localeCompare(themeName(y.theme)));
    if (c.community !== null && c.community !== undefined && !state.communitySize.has(c.community)) state.communitySize.set(c.community, 1);
  }
}

const themeName = (id) => state.themes.get(id) || id;
const networkName = (id) => state.networks.get(id) || id;
const cityName = (id) => (state.cities.get(id) || {}).label || id;

// ---------------------------------------------------------------- colours and sizes

function colourScheme() {
  const mode = $("#colour-by").value;
  if (mode === "network") {
    const ids = [...state.networks.keys()].sort((a, b) => networkName(a).localeCompare(networkName(b)));
    const colour = new Map(ids.map((id, i) => [id, PALETTE[i % PALETTE.length]]));
    return {
      of: (c) => (c.networks && c.networks.length ? colour.get(c.networks[0]) || GREY : GREY),
      legend: [...ids.map((id) => [colour.get(id), networkName(id)]), [GREY, "No national network"]],
    };
  }
  if (mode === "community") {
    const ids = [...state.communitySize.entries()].filter(([, size]) => size > 1).sort((a, b) => b[1] - a[1] || a[0] - b[0]).map(([id]) => id);
    const colour = new Map(ids.slice(0, PALETTE.length).map((id, i) => [id, PALETTE[i]]));
    return {
      of: (c) => colour.get(c.community) || GREY,
      legend: [...ids.slice(0, PALETTE.length).map((id) => [colour.get(id), `Community ${id} (${plural(state.communitySize.get(id), "city", "cities")})`]), [GREY, "On its own"]],
    };
  }
  if (mode === "theme") {
    const theme = $("#colour-theme").value;
    return {
      of: (c) => {
        const p = c.priorities.find((x) => x.theme === theme);
        return p && p.priority ? PRIORITY_COLOURS[p.priority] : GREY;
      },
      legend: [5, 4, 3, 2, 1].map((p) => [PRIORITY_COLOURS[p], `Priority ${p}/5`]).concat([[GREY, "Not a priority"]]),
    };
  }
  return {
    of: (c) => (c.membership === "national" ? PALETTE[1] : PALETTE[0]),
    legend: [[PALETTE[0], "International member"], [PALETTE[1], "Member through a national network"]],
  };
}

function betweenness() {
  if (!state.betweenness) {
    const bc = state.cy.elements().betweennessCentrality({ directed: false });
    state.betweenness = new Map(state.cy.nodes().map((n) => [n.id(), bc.betweennessNormalized(n)]));
  }
  return state.betweenness;
}

function sizeOf(c) {
  if ($("#size-by").value === "betweenness") return 10 + 60 * Math.sqrt(betweenness().get(c.id) || 0);
  return 10 + 5 * Math.sqrt(c.degree || 0);
}

// ---------------------------------------------------------------- controls

function fillControls() {
  const themeSelect = $("#colour-theme");
  themeSelect.replaceChildren(...[...state.themes.entries()].sort((a, b) => a[1].localeCompare(b[1])).map(([id, name]) => el("option", { value: id, text: name })));
  const pick = $("#pick-city");
  pick.append(
    ...[...state.cities.values()].sort((a, b) => a.label.localeCompare(b.label)).map((c) => el("option", { value: c.id, text: `${c.label} (${countryName(c.country)})` })),
  );
  $("#colour-by").addEventListener("change", () => {
    themeSelect.disabled = $("#colour-by").value !== "theme";
    restyle();
  });
  themeSelect.addEventListener("change", restyle);
  $("#size-by").addEventListener("change", restyle);
  $("#show-isolated").addEventListener("change", () => {
    const show = $("#show-isolated").checked;
    state.cy.nodes().forEach((n) => {
      if (n.degree() === 0) n.style("display", show ? "element" : "none");
    });
    state.cy.fit(state.cy.nodes(":visible"), 20);
    if (state.mapDrawn) drawMap(true);
  });
  pick.addEventListener("change", () => pick.value && select(pick.value));
  $("#controls").addEventListener("submit", (ev) => ev.preventDefault());
}

function wireTabs() {
  const tabs = $$('[role="tab"]');
  const show = (tab) => {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
      $(`#${t.getAttribute("aria-controls")}`).hidden = !on;
    }
    if (tab.id === "tab-map") drawMap();
    else if (state.cy) state.cy.resize();
  };
  for (const t of tabs) {
    t.addEventListener("click", () => show(t));
    t.addEventListener("keydown", (ev) => {
      if (ev.key !== "ArrowRight" && ev.key !== "ArrowLeft") return;
      const next = tabs[(tabs.indexOf(t) + (ev.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
      next.focus();
      show(next);
    });
  }
}

// ---------------------------------------------------------------- graph

function drawGraph() {
  const cities = [...state.cities.values()];
  // start from geography (a stable, meaningful start), then let the force layout untangle
  const lons = cities.map((c) => c.lon).filter(Number.isFinite);
  const lats = cities.map((c) => c.lat).filter(Number.isFinite);
  const mx = (Math.min(...lons) + Math.max(...lons)) / 2;
  const my = (Math.min(...lats) + Math.max(...lats)) / 2;
  const scheme = colourScheme();
  const elements = [
    ...cities.map((c) => ({
      group: "nodes",
      data: { id: c.id, label: c.label, colour: scheme.of(c), size: 10 + 5 * Math.sqrt(c.degree || 0) },
      position: { x: ((c.lon || mx) - mx) * 12, y: -((c.lat || my) - my) * 18 },
    })),
    ...state.ties.filter((t) => state.cities.has(t.a) && state.cities.has(t.b)).map((t, i) => ({ group: "edges", data: { id: `e${i}`, source: t.a, target: t.b, kind: t.kind || "" } })),
  ];
  const cy = window.cytoscape({
    container: $("#graph"),
    elements,
    layout: { name: "preset" },
    minZoom: 0.1,
    maxZoom: 6,
    boxSelectionEnabled: false,
    autoungrabify: false,
    style: [
      {
        selector: "node",
        style: {
          "background-color": "data(colour)",
          width: "data(size)",
          height: "data(size)",
          "border-width": 1,
          "border-color": "#ffffff",
          label: "",
          "font-size": 11,
          "text-outline-color": "#ffffff",
          "text-outline-width": 2,
          color: "#1b1f24",
          "text-valign": "top",
          "text-margin-y": -3,
        },
      },
      { selector: "node.labelled", style: { label: "data(label)" } },
      { selector: "edge", style: { width: 1.2, "line-color": "#b3bcc6", "curve-style": "haystack", opacity: 0.9 } },
      { selector: 'edge[kind = "twinning"]', style: { "line-color": "#8893a0", width: 1.8 } },
      { selector: ".faded", style: { opacity: 0.15 } },
      { selector: "node.chosen", style: { "border-width": 4, "border-color": "#1b1f24", label: "data(label)", "font-size": 14, "font-weight": "bold", "z-index": 10 } },
      { selector: "node.near", style: { label: "data(label)", "z-index": 9 } },
      { selector: "edge.near", style: { "line-color": "#1b1f24", width: 2.2, opacity: 1, "z-index": 9 } },
    ],
  });
  state.cy = cy;
  restyle();
  // the force layout is quadratic: past a couple of thousand cities the map positions stay
  const big = cities.length > 2000;
  cy.layout(big ? { name: "preset", fit: true, padding: 20 } : {
    name: "cose",
    animate: false,
    randomize: false,
    nodeDimensionsIncludeLabels: false,
    idealEdgeLength: () => 60,
    nodeRepulsion: () => 60000,
    gravity: 1.2,
    numIter: 1500,
    componentSpacing: 30,
    fit: true,
    padding: 20,
  }).run();
  state.big = big;
  // Cytoscape caches where its canvas is and forgets it only on scroll, resize or a transition;
  // a message appearing above the graph moves the canvas without any, and a click then landed
  // beside the city. resize() (public) makes it measure again before the press is handled.
  $("#panel-graph").addEventListener("pointerdown", () => cy.resize(), { capture: true });
  cy.on("tap", "node", (ev) => select(ev.target.id()));
  cy.on("tap", (ev) => {
    if (ev.target === cy) clearSelection();
  });
  $("#graph").dataset.ready = "true";
}

function restyle() {
  const scheme = colourScheme();
  const top = new Set([...state.cities.values()].sort((a, b) => sizeOf(b) - sizeOf(a)).slice(0, 12).map((c) => c.id));
  state.cy.batch(() => {
    state.cy.nodes().forEach((n) => {
      const c = state.cities.get(n.id());
      n.data("colour", scheme.of(c));
      n.data("size", sizeOf(c));
      n.toggleClass("labelled", top.has(c.id));
    });
  });
  $("#legend").replaceChildren(...scheme.legend.map(([colour, label]) => el("li", {}, el("span", { class: "sw", style: { "background-color": colour }, "aria-hidden": "true" }), label)));
  if (state.mapDrawn) drawMap(true);
}

function select(id) {
  const c = state.cities.get(id);
  if (!c) return;
  state.selected = id;
  $("#pick-city").value = id;
  const cy = state.cy;
  cy.batch(() => {
    cy.elements().removeClass("chosen near faded");
    const node = cy.getElementById(id);
    const hood = node.closedNeighborhood();
    cy.elements().not(hood).addClass("faded");
    hood.addClass("near");
    node.removeClass("near").addClass("chosen");
  });
  if (state.map) state.map.highlight(id);
  profile(c);
}

function clearSelection() {
  state.selected = null;
  state.cy.elements().removeClass("chosen near faded");
  if (state.map) state.map.highlight(null);
}

// ---------------------------------------------------------------- map

function centralBox(cities) {
  // fit the map to where most cities are (5th to 95th percentile), not to the far outliers
  const q = (xs, p) => xs[Math.min(xs.length - 1, Math.max(0, Math.round(p * (xs.length - 1))))];
  const lons = cities.map((c) => c.lon).sort((a, b) => a - b);
  const lats = cities.map((c) => c.lat).sort((a, b) => a - b);
  const [x0, x1, y0, y1] = [q(lons, 0.05), q(lons, 0.95), q(lats, 0.05), q(lats, 0.95)];
  return cities.filter((c) => c.lon >= x0 && c.lon <= x1 && c.lat >= y0 && c.lat <= y1);
}

function drawMap(force = false) {
  if (state.mapDrawn && !force) return;
  if (!state.map) state.map = new WorldMap($("#map"), { label: "Map of the member cities and their ties", onSelect: select });
  const scheme = colourScheme();
  const cities = [...state.cities.values()].filter((c) => Number.isFinite(c.lat) && Number.isFinite(c.lon));
  const show = $("#show-isolated").checked;
  const points = cities.filter((c) => show || (c.degree || 0) > 0).map((c) => ({ id: c.id, lat: c.lat, lon: c.lon, color: scheme.of(c), r: Math.max(3, sizeOf(c) / 3), title: `${c.label} (${countryName(c.country)}): ${plural(c.degree || 0, "tie")}` }));
  const links = state.ties
    .filter((t) => state.cities.has(t.a) && state.cities.has(t.b))
    .map((t) => {
      const a = state.cities.get(t.a);
      const b = state.cities.get(t.b);
      return { from: [a.lon, a.lat], to: [b.lon, b.lat], color: t.kind === "twinning" ? "#5b6673" : "#8c97a3", width: t.kind === "twinning" ? 1.2 : 0.8 };
    });
  state.mapDrawn = true;
  state.map.render({ points, links, fit: centralBox(cities) }).then(() => state.map.highlight(state.selected));
}

// ---------------------------------------------------------------- profile

async function profile(c) {
  const box = $("#profile");
  const analysis = findings(c.id);
  const partners = [...c.partners].sort((a, b) => cityName(a.id).localeCompare(cityName(b.id)));
  const facts = [
    ["Country", countryName(c.country)],
    ["Membership", c.membership === "national" ? "through a national network" : "international"],
    ["National networks", c.networks && c.networks.length ? listWords(c.networks.map(networkName)) : "none"],
    ["Member since", c.joined || "unknown"],
    ["Ties", num(c.degree || 0, 0)],
    ["Betweenness", state.betweenness || !state.big ? num(betweenness().get(c.id) || 0, 3) : "choose Size by betweenness to compute it"],
    ["Community", c.community !== null && c.community !== undefined && state.communitySize.get(c.community) > 1 ? `${c.community} (${plural(state.communitySize.get(c.community), "city", "cities")})` : "on its own"],
  ];
  const details = el("div", { class: "city-details" }, el("p", { class: "note", text: "Loading the city's details…" }));
  box.replaceChildren(
    el("h2", { id: "profile-title" }, el("span", { class: "profile-name", text: c.label })),
    el("dl", {}, facts.map(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })])),
    details,
    analysis.length ? el("h3", { text: "What the analysis says" }) : null,
    analysis.length ? reasonList(analysis, { weights: false }) : null,
    el("h3", { text: "Priorities" }),
    c.priorities.length
      ? el("ul", {}, c.priorities.map((p) => el("li", { text: `${themeName(p.theme)}: ${p.priority}/5` })))
      : el("p", { class: "empty", text: "No theme recorded." }),
    el("h3", { text: `Partners (${partners.length})` }),
    partners.length
      ? el(
          "ul",
          {},
          partners.map((p) =>
            el(
              "li",
              {},
              el("button", { type: "button", class: "link", text: cityName(p.id), "aria-label": `Show ${cityName(p.id)}`, on: { click: () => select(p.id) } }),
              ` · ${p.kind || "tie"}${p.since ? ` since ${p.since}` : ""}`,
            ),
          ),
        )
      : el("p", { class: "empty", text: "No partnership yet." }),
    el("p", {}, el("a", { href: `/partners?city=${encodeURIComponent(c.id)}&k=10`, text: `Find partners for ${c.label}` })),
  );
  try {
    const full = await api(`/v1/cities/${encodeURIComponent(c.id)}`);
    if (state.selected !== c.id) return;
    const more = [];
    if (full.population) more.push(`Population ${num(full.population, 0)}`);
    if (full.languages && full.languages.length) more.push(`speaks ${listWords(full.languages.map(languageName))}`);
    if (full.coordinator_hours) more.push(`coordinator time ${num(full.coordinator_hours, 0)} h a month`);
    details.replaceChildren(el("p", { class: "note", text: more.join(" · ") }), full.description ? el("p", { class: "description", text: full.description }) : null);
  } catch (err) {
    details.replaceChildren();
    showError(details, err, "Could not load the city: ");
  }
}

function findings(id) {
  const s = state.stats;
  const out = [];
  const lists = [s.isolated, s.needs_buddy, s.peripheral, s.articulation_points, s.network_bridgers, s.top_betweenness, s.top_degree];
  for (const list of lists) for (const row of list || []) if (row.city_id === id) out.push(...(row.reasons || []));
  for (const b of s.bridges || []) if (b.city_a === id || b.city_b === id) out.push(...(b.reasons || []));
  const seen = new Set();
  return out.filter((r) => !seen.has(r.text) && seen.add(r.text));
}

// ---------------------------------------------------------------- summary and tables

function summary(s) {
  const comms = s.communities || {};
  const items = [
    [num(s.cities, 0), "cities"],
    [num(s.ties, 0), "ties"],
    [num(s.components ? s.components.count : 0, 0), "separate parts"],
    [`${Math.round(100 * (s.components ? s.components.largest_share : 0))}%`, "of cities in the largest part"],
    [num((comms.communities || []).filter((c) => c.size > 1).length, 0), "communities"],
    [num((s.isolated || []).length, 0), "cities without ties"],
    [num((s.bridges || []).length, 0), "bridges (single links)"],
  ];
  $("#summary").replaceChildren(...items.map(([n, label]) => el("li", {}, el("b", { text: n }), label)));
}

function table(id, title, caption, columns, rows, empty) {
  const body = rows.length
    ? rows.map((r) => el("tr", {}, columns.map((col, i) => el(i === 0 ? "th" : "td", { scope: i === 0 ? "row" : null, class: col.num ? "num" : null }, col.get(r)))))
    : [el("tr", {}, el("td", { colspan: columns.length, class: "empty", text: empty }))];
  return el(
    "section",
    { class: "analytics", "aria-labelledby": `${id}-title` },
    el("h3", { id: `${id}-title`, text: title }),
    caption ? el("p", { class: "note", text: caption }) : null,
    el(
      "div",
      { class: "table-wrap scroll" },
      el("table", { id }, el("caption", { class: "visually-hidden", text: title }), el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col", class: c.num ? "num" : null, text: c.title })))), el("tbody", {}, body)),
    ),
  );
}

const why = (r) => (r.reasons || []).map((x) => x.text).join(" ");
const cityCell = (id, name) => el("button", { type: "button", class: "link", text: name || cityName(id), on: { click: () => { select(id); $("#profile").focus(); } } });

function tables(s) {
  const themes = s.themes || {};
  const comms = (s.communities && s.communities.communities) || [];
  const missingWords = { expert: "an expert", cluster: "a cluster", practice: "a good practice" };
  $("#tables").replaceChildren(
    table("t-without-expert", "Themes without an expert", `Themes that cities give priority ${themes.demand_priority || 4} or more but no expert covers at level ${themes.expert_level || 3} or above.`, [
      { title: "Theme", get: (r) => r.name },
      { title: "Cities asking", num: true, get: (r) => num(r.demand, 0) },
      { title: "Experts (any level)", num: true, get: (r) => num(r.experts_any_level, 0) },
      { title: "Why", get: why },
    ], themes.without_expert || [], "Every theme in demand has an expert."),
    table("t-bridges", "Bridges", "Ties that are the only link between two parts of the network: if one ends, the parts fall apart.", [
      { title: "Tie", get: (r) => el("span", {}, cityCell(r.city_a, r.name_a), " – ", cityCell(r.city_b, r.name_b)) },
      { title: "Kind", get: (r) => (r.kinds || []).join(", ") },
      { title: "Cities on each side", get: (r) => `${r.side_a} / ${r.side_b}` },
      { title: "Why", get: why },
    ], s.bridges || [], "No bridge: every tie has a way around it."),
    table("t-isolated", "Cities without ties", "Members with no partnership with any other member.", [
      { title: "City", get: (r) => cityCell(r.city_id, r.name) },
      { title: "Member since", num: true, get: (r) => r.joined || "" },
      { title: "Why", get: why },
    ], s.isolated || [], "Every city has at least one tie."),
    table("t-buddy", "Newcomers who need a buddy", "Recent members without a partner, with well-connected cities that could welcome them.", [
      { title: "City", get: (r) => cityCell(r.city_id, r.name) },
      { title: "Joined", num: true, get: (r) => r.joined || "" },
      { title: "Possible buddies", get: (r) => el("span", {}, (r.suggested_buddies || []).flatMap((id, i) => [i ? ", " : "", cityCell(id)])) },
      { title: "Why", get: why },
    ], s.needs_buddy || [], "No newcomer is alone."),
    table("t-articulation", "Cities holding parts together", "Without one of these cities, part of the network would be cut off.", [
      { title: "City", get: (r) => cityCell(r.city_id, r.name) },
      { title: "Cities cut off", num: true, get: (r) => num(r.cut_off, 0) },
      { title: "Why", get: why },
    ], s.articulation_points || [], "No single city holds parts together."),
    table("t-peripheral", "Cities on the edge", "Cities with a single tie or far from the core of the network.", [
      { title: "City", get: (r) => cityCell(r.city_id, r.name) },
      { title: "Ties", num: true, get: (r) => num(r.degree, 0) },
      { title: "Steps from the core", num: true, get: (r) => (r.core_distance === null || r.core_distance === undefined ? "–" : num(r.core_distance, 0)) },
      { title: "Why", get: why },
    ], s.peripheral || [], "No city is on the edge."),
    table("t-bridgers", "Cities linking national networks", "Cities whose ties reach beyond their own national network.", [
      { title: "City", get: (r) => cityCell(r.city_id, r.name) },
      { title: "Ties across", num: true, get: (r) => num(r.cross_ties, 0) },
      { title: "Why", get: why },
    ], s.network_bridgers || [], "No city links national networks yet."),
    table("t-central", "Most connected and best placed", "The cities with the most ties, and those lying on the most shortest paths between others (betweenness).", [
      { title: "City", get: (r) => cityCell(r.city_id, r.name) },
      { title: "Measure", get: (r) => r.measure },
      { title: "Why", get: why },
    ], [...(s.top_degree || []).slice(0, 5).map((r) => ({ ...r, measure: "ties" })), ...(s.top_betweenness || []).slice(0, 5).map((r) => ({ ...r, measure: "betweenness" }))], "No ties yet."),
    table("t-communities", "Communities and national networks", communityNote(s.communities), [
      { title: "Community", get: (r) => `${r.id}` },
      { title: "Cities", num: true, get: (r) => num(r.size, 0) },
      { title: "Why", get: why },
    ], comms.filter((c) => c.size > 1), "No communities: too few ties."),
    table("t-coverage", "Theme coverage", "For each theme: cities that give it high priority, experts, accepted clusters and good practices.", [
      { title: "Theme", get: (r) => r.name },
      { title: "Cities asking", num: true, get: (r) => num(r.demand, 0) },
      { title: "Experts", num: true, get: (r) => num(r.experts, 0) },
      { title: "Clusters", num: true, get: (r) => num(r.clusters, 0) },
      { title: "Practices", num: true, get: (r) => num(r.practices, 0) },
      { title: "Missing", get: (r) => listWords((r.missing || []).map((m) => missingWords[m] || m)) },
    ], themes.coverage || [], "No themes."),
    table("t-clusters", "Clusters at risk of being closed", "Accepted clusters whose members mostly talk to each other.", [
      { title: "Cluster", get: (r) => r.name || r.cluster_id || r.id || "" },
      { title: "Why", get: why },
    ], s.clusters || [], "No accepted cluster is at risk (or none is accepted yet)."),
  );
}

function communityNote(c) {
  if (!c) return "";
  return `Groups of cities more tied to each other than to the rest (${c.method || "Leiden"}; modularity ${num(c.modularity, 2)}). Agreement with national networks: ${num(c.nmi_vs_networks, 2)} (normalised mutual information, 0 = none, 1 = the same groups).`;
}

// ---------------------------------------------------------------- suggestion quality

const share = (v, se) => (v == null ? "–" : `${num(v, 3)}${se == null ? "" : ` ± ${num(se, 3)}`}`);

function qualityTable(e, group, title) {
  const rows = e.methods.map((m) => ({ name: m.name, s: m[group] }));
  return table(`q-${group}`, title, null, [
    { title: "Method", get: (r) => r.name },
    { title: `Hits@${e.k}`, num: true, get: (r) => share(r.s.hits_at_k, r.s.hits_at_k_se) },
    { title: "MRR", num: true, get: (r) => share(r.s.mrr, r.s.mrr_se) },
  ], rows, "No held-out ties in this group.");
}

function wireQuality() {
  const button = $("#quality-run");
  button.addEventListener("click", async () => {
    hideError($("#quality-error"));
    button.disabled = true;
    try {
      const doc = await withBusy($("#quality-status"), "Hiding ties and asking each method for them back…", () => api("/v1/network/partner-evaluation"));
      const e = doc.evaluation;
      say($("#quality-status"), `${num(e.pairs, 0)} hidden ties over ${e.splits} splits (${num(e.pairs_with_common_neighbour, 0)} with a partner in common, ${num(e.pairs_without_common_neighbour, 0)} without). Partner lists are ranked by ${doc.live_ranker.description}.`);
      $("#quality-result").replaceChildren(
        qualityTable(e, "overall", "All hidden ties"),
        qualityTable(e, "with_common_neighbour", "With a partner in common"),
        qualityTable(e, "without_common_neighbour", "Without a partner in common"),
      );
    } catch (err) {
      showError($("#quality-error"), err, "Could not measure: ");
    } finally {
      button.disabled = false;
    }
  });
}

// ---------------------------------------------------------------- exports

function wireExports() {
  for (const button of $$("#export button[data-format]")) {
    button.addEventListener("click", async () => {
      hideError($("#export-error"));
      const q = new URLSearchParams({ format: button.dataset.format });
      if ($("#export-themes").checked) q.set("themes", "true");
      if ($("#export-networks").checked) q.set("networks", "true");
      button.disabled = true;
      try {
        await withBusy($("#export-status"), `Preparing ${button.dataset.file}…`, () => download(`/v1/network/graph?${q}`, button.dataset.file));
        say($("#export-status"), `Downloaded ${button.dataset.file}.`);
      } catch (err) {
        showError($("#export-error"), err, "Export failed: ");
      } finally {
        button.disabled = false;
      }
    });
  }
}

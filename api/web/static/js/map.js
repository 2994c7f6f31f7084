// A small world map: Natural Earth outlines (world-atlas, via topojson-client) drawn with
// d3-geo into SVG, cities as dots, ties as great-circle lines. No tiles, nothing fetched
// from outside: the outlines are a file this server serves from npm's world-atlas.
//
// The map is a picture (role="img" with a summary); every city on it is also in a list or
// table on the same page, which is the keyboard and screen-reader way in. Zoom with the
// + / − buttons, the mouse wheel or a pinch; drag to pan.

import { el, svgEl } from "./common.js";

const W = 800;
const H = 600;
let world = null;

function loadWorld() {
  if (!world) {
    world = fetch("/static/vendor/countries-110m.json")
      .then((r) => {
        if (!r.ok) throw new Error("the world outlines are not installed (npm ci --prefix api/web)");
        return r.json();
      })
      .then((topo) => window.topojson.feature(topo, topo.objects.countries).features);
    world.catch(() => {
      world = null;
    });
  }
  return world;
}

export class WorldMap {
  /**
   * @param {HTMLElement} box a .map-box element (its size is set by CSS, so nothing shifts)
   * @param {{label: string, onSelect?: (id: string) => void}} options
   */
  constructor(box, { label, onSelect } = {}) {
    this.box = box;
    this.onSelect = onSelect || null;
    this.k = 1;
    this.tx = 0;
    this.ty = 0;
    this.dots = new Map();
    this.baseR = new Map();
    this.title = svgEl("title");
    this.title.textContent = label;
    this.land = svgEl("g", { class: "lands" });
    this.links = svgEl("g", { class: "links" });
    this.points = svgEl("g", { class: "points" });
    this.labels = svgEl("g", { class: "labels" });
    this.view = svgEl("g", {}, this.land, this.links, this.points, this.labels);
    this.svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, preserveAspectRatio: "xMidYMid meet" }, this.title, this.view);
    const tools = el(
      "div",
      { class: "map-tools" },
      el("button", { type: "button", "aria-label": "Zoom in on the map", title: "Zoom in", text: "+", on: { click: () => this.zoomBy(1.6) } }),
      el("button", { type: "button", "aria-label": "Zoom out on the map", title: "Zoom out", text: "−", on: { click: () => this.zoomBy(1 / 1.6) } }),
      el("button", { type: "button", "aria-label": "Show the whole map", title: "Reset", text: "⟲", on: { click: () => this.reset() } }),
    );
    box.replaceChildren(this.svg, tools);
    this.wirePanZoom();
    if (window.ResizeObserver) new ResizeObserver(() => this.apply()).observe(box);
  }

  setLabel(label) {
    this.svg.setAttribute("aria-label", label);
    this.title.textContent = label;
  }

  /**
   * points: [{id, lat, lon, color, r, title, label?}]; links: [{from: [lon, lat], to: [lon, lat], color, width}]
   * fit: the points the view is fitted to (default: all).
   */
  async render({ points = [], links = [], fit = null } = {}) {
    const features = await loadWorld();
    const target = (fit && fit.length ? fit : points).filter((p) => Number.isFinite(p.lat) && Number.isFinite(p.lon));
    const projection = window.d3.geoNaturalEarth1();
    if (target.length) {
      const lons = target.map((p) => p.lon);
      const lats = target.map((p) => p.lat);
      const [x0, x1, y0, y1] = [Math.min(...lons), Math.max(...lons), Math.min(...lats), Math.max(...lats)];
      const pad = Math.max(2, 0.08 * Math.max(x1 - x0, y1 - y0));
      const corners = [
        [Math.max(-180, x0 - pad), Math.max(-85, y0 - pad)],
        [Math.min(180, x1 + pad), Math.min(85, y1 + pad)],
        [Math.max(-180, x0 - pad), Math.min(85, y1 + pad)],
        [Math.min(180, x1 + pad), Math.max(-85, y0 - pad)],
      ];
      projection.fitExtent([[10, 10], [W - 10, H - 10]], { type: "MultiPoint", coordinates: corners });
    } else {
      projection.fitExtent([[10, 10], [W - 10, H - 10]], { type: "Sphere" });
    }
    const path = window.d3.geoPath(projection);
    this.land.replaceChildren(...features.map((f) => svgEl("path", { class: "land", d: path(f) || "" })));
    this.links.replaceChildren(
      ...links.map((l) =>
        svgEl("path", {
          class: "link",
          d: path({ type: "LineString", coordinates: [l.from, l.to] }) || "",
          stroke: l.color || "#555",
          "stroke-width": l.width || 1.2,
          "stroke-dasharray": l.dash || null,
        }),
      ),
    );
    this.dots = new Map();
    this.baseR = new Map();
    const dots = [];
    const texts = [];
    for (const p of points) {
      if (!Number.isFinite(p.lat) || !Number.isFinite(p.lon)) continue;
      const xy = projection([p.lon, p.lat]);
      if (!xy) continue;
      const r = p.r || 5;
      const title = svgEl("title");
      title.textContent = p.title || p.label || p.id;
      const dot = svgEl("circle", { class: "pt", cx: xy[0].toFixed(1), cy: xy[1].toFixed(1), r, fill: p.color || "#0072b2", dataset: { id: p.id } }, title);
      dot.addEventListener("click", () => this.onSelect && this.onSelect(p.id));
      dots.push(dot);
      this.baseR.set(dot, r);
      if (!this.dots.has(p.id)) this.dots.set(p.id, []);
      this.dots.get(p.id).push(dot);
      if (p.label) {
        const t = svgEl("text", { class: "pt-label", x: (xy[0] + r).toFixed(1), y: xy[1].toFixed(1), "dominant-baseline": "middle" });
        t.textContent = p.label;
        texts.push(t);
      }
    }
    this.points.replaceChildren(...dots);
    this.labels.replaceChildren(...texts);
    this.reset();
  }

  highlight(id) {
    for (const list of this.dots.values()) for (const d of list) d.classList.remove("hot");
    const mine = id ? this.dots.get(id) : null;
    if (mine) {
      for (const d of mine) {
        d.classList.add("hot");
        this.points.append(d); // on top
      }
    }
  }

  // ---- pan and zoom (a transform on one group; dots keep their size on screen)

  apply() {
    this.view.setAttribute("transform", `translate(${this.tx.toFixed(2)} ${this.ty.toFixed(2)}) scale(${this.k.toFixed(4)})`);
    // sizes are given in screen pixels: undo the picture's own scale and most of the zoom
    const rect = this.svg.getBoundingClientRect();
    const s = Math.min(rect.width / W, rect.height / H) || 1;
    for (const [dot, r] of this.baseR) dot.setAttribute("r", (r / (s * Math.sqrt(this.k))).toFixed(2));
    for (const t of this.labels.children) {
      t.setAttribute("font-size", (12 / (s * this.k)).toFixed(2));
      t.setAttribute("dx", (3 / (s * this.k)).toFixed(2));
    }
  }

  reset() {
    this.k = 1;
    this.tx = 0;
    this.ty = 0;
    this.apply();
  }

  zoomBy(f, cx = W / 2, cy = H / 2) {
    const k = Math.min(40, Math.max(1, this.k * f));
    const f2 = k / this.k;
    this.tx = cx - (cx - this.tx) * f2;
    this.ty = cy - (cy - this.ty) * f2;
    this.k = k;
    if (k === 1) {
      this.tx = 0;
      this.ty = 0;
    }
    this.apply();
  }

  toView(ev) {
    const rect = this.svg.getBoundingClientRect();
    const s = Math.min(rect.width / W, rect.height / H) || 1;
    const ox = (rect.width - W * s) / 2;
    const oy = (rect.height - H * s) / 2;
    return [(ev.clientX - rect.left - ox) / s, (ev.clientY - rect.top - oy) / s, s];
  }

  wirePanZoom() {
    this.svg.addEventListener(
      "wheel",
      (ev) => {
        ev.preventDefault();
        const [x, y] = this.toView(ev);
        this.zoomBy(ev.deltaY < 0 ? 1.25 : 0.8, x, y);
      },
      { passive: false },
    );
    let drag = null;
    this.svg.addEventListener("pointerdown", (ev) => {
      if (ev.target.closest && ev.target.closest(".pt")) return;
      const [x, y] = this.toView(ev);
      drag = { x, y, tx: this.tx, ty: this.ty, id: ev.pointerId };
      this.svg.setPointerCapture(ev.pointerId);
    });
    this.svg.addEventListener("pointermove", (ev) => {
      if (!drag || ev.pointerId !== drag.id) return;
      const [x, y] = this.toView(ev);
      this.tx = drag.tx + (x - drag.x);
      this.ty = drag.ty + (y - drag.y);
      this.apply();
    });
    const end = () => {
      drag = null;
    };
    this.svg.addEventListener("pointerup", end);
    this.svg.addEventListener("pointercancel", end);
  }
}

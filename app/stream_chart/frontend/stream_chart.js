// Gradient Lab stream_chart: ONE Plotly div per chart, updated in place with Plotly.react,
// so zoom / hover (layout.uirevision) survive every update and nothing flickers.
//
// Loaded once per page (an ES module, cached by URL) by the tiny inline loader that
// app/stream_chart/__init__.py registers as a components-v2 component. Streamlit calls the
// default export again with the same parentElement whenever the data changes.
//
// plotly.js comes from the plotly Python package (package_data/plotly.min.js), served by
// Streamlit itself through a components-v1 static route: no CDN, works offline.

let plotlyPromise = null;

function loadPlotly(url) {
  if (window.Plotly && typeof window.Plotly.react === "function") {
    return Promise.resolve(window.Plotly);
  }
  if (!plotlyPromise) {
    plotlyPromise = new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = url;
      s.async = true;
      s.dataset.gradlab = "plotly";
      s.onload = () =>
        window.Plotly
          ? resolve(window.Plotly)
          : reject(new Error("plotly.js loaded but did not define window.Plotly"));
      s.onerror = () => {
        plotlyPromise = null; // let a later update retry
        s.remove();
        reject(new Error(`could not load ${url}`));
      };
      document.head.appendChild(s);
    });
  }
  return plotlyPromise;
}

function decode(data) {
  if (data instanceof Uint8Array || data instanceof ArrayBuffer) {
    return JSON.parse(new TextDecoder().decode(data));
  }
  return typeof data === "string" ? JSON.parse(data) : data;
}

function chartDiv(parent, key) {
  let gd = parent.querySelector(":scope > .gl-stream-chart");
  if (gd) return gd;
  gd = document.createElement("div");
  gd.className = "gl-stream-chart";
  gd.dataset.chartKey = key || "";
  gd.style.width = "100%";
  parent.appendChild(gd);
  // Follow the column's width (sidebar toggles, layout changes), not only the window's.
  let pending = false;
  gd.__glResize = new ResizeObserver(() => {
    if (pending || !gd.__glDrawn || !window.Plotly) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      if (gd.isConnected) window.Plotly.Plots.resize(gd);
    });
  });
  gd.__glResize.observe(gd);
  // Charts scrolled out of view (or in a hidden tab) are redrawn at most every
  // OFFSCREEN_MS instead of on every update: on a 2-core laptop the browser's redraws of
  // eight panels compete with the training. Back in view, the latest update is drawn at once.
  gd.__glOnScreen = true;
  if (window.IntersectionObserver) {
    gd.__glSeen = new IntersectionObserver((entries) => {
      const e = entries[entries.length - 1];
      gd.__glOnScreen = e.isIntersecting;
      if (gd.__glOnScreen && gd.__glStale) drawLatest(gd);
    }, { rootMargin: "150px" });
    gd.__glSeen.observe(gd);
  }
  return gd;
}

const OFFSCREEN_MS = 2000;

function visible(gd) {
  return gd.__glOnScreen && document.visibilityState !== "hidden";
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") return;
  for (const gd of document.querySelectorAll(".gl-stream-chart")) {
    if (gd.__glStale && visible(gd)) drawLatest(gd);
  }
});

// A chart whose config names a PNG download (toImageButtonOptions) also gets an SVG one.
// Both are named after the chart's key ("gradlab-pg_chart_grad.svg").
function withSvg(Plotly, config, key) {
  if (!config.toImageButtonOptions || config.modeBarButtonsToAdd) return config;
  const filename = config.toImageButtonOptions.filename || `gradlab-${key || "chart"}`;
  config = Object.assign({}, config, {
    toImageButtonOptions: Object.assign({ filename }, config.toImageButtonOptions) });
  const icon = (Plotly.Icons && (Plotly.Icons.disk || Plotly.Icons.camera)) || undefined;
  return Object.assign({}, config, { modeBarButtonsToAdd: [{
    name: "Download plot as SVG", title: "Download plot as SVG", icon,
    click: (g) => Plotly.downloadImage(g, { format: "svg", filename,
      width: g._fullLayout.width, height: g._fullLayout.height }),
  }] });
}

// The same config object for every update of a chart (a new button function each time
// would make Plotly.react redraw the chart from scratch).
function chartConfig(gd, Plotly, msg) {
  const src = JSON.stringify(msg.config || {});
  if (gd.__glCfgSrc !== src) {
    gd.__glCfgSrc = src;
    gd.__glCfg = withSvg(Plotly, msg.config || {}, msg.key);
  }
  return gd.__glCfg;
}

// ---- the page's theme (light / dark) ---------------------------------------------------
// The figures arrive in the light style (app/charts/style.py). On a dark page their
// light-only colours are swapped for the page's: transparent backgrounds, the page's text
// colour, a faint grid, a dark legend box. Data colours are kept (the palette is chosen
// to read on both).

const LIGHT_TEXT = new Set(["#1f1f1f", "#2f2d2b"]);
const LIGHT_GRID = new Set(["#e3e3e3"]);
const LIGHT_BG = new Set(["white", "#fff", "#ffffff"]);

function luminance(css) {
  const m = /rgba?\(([^)]+)\)/.exec(css || "");
  if (!m) return 1;
  const [r, g, b, a] = m[1].split(",").map((x) => parseFloat(x));
  if (a === 0) return 1; // transparent: assume the light page behind it
  return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
}

function pageTheme() {
  const app = document.querySelector(".stApp") || document.body;
  const cs = getComputedStyle(app);
  const dark = luminance(cs.backgroundColor) < 0.4;
  return { dark, text: cs.color, bg: cs.backgroundColor, key: `${dark}|${cs.color}` };
}

// Dark palette colours that would vanish on a dark page, for text and lines only (bars keep
// theirs: their patterns and the zone labels carry the band).
const ON_DARK = { "#253494": "#8c9ef0" };
const DATA_KEYS = new Set(["x", "y", "z", "customdata", "text", "hovertext", "bdata"]);

function themed(node, theme, key, parent) {
  if (Array.isArray(node)) return node.map((v) => themed(v, theme, key, parent));
  if (node && typeof node === "object" && !ArrayBuffer.isView(node)) {
    const out = {};
    for (const [k, v] of Object.entries(node)) {
      out[k] = DATA_KEYS.has(k) ? v : themed(v, theme, k, key);
    }
    if (typeof out.bgcolor === "string" && out.bgcolor.startsWith("rgba(255,255,255")) {
      // a legend goes transparent; a label box (annotation) takes the page's background,
      // so its text stays readable over bars and lines
      out.bgcolor = key === "legend" ? "rgba(0,0,0,0)" : theme.bg;
    }
    return out;
  }
  if (typeof node !== "string") return node;
  const v = node.toLowerCase();
  if ((key === "paper_bgcolor" || key === "plot_bgcolor") && LIGHT_BG.has(v)) return "rgba(0,0,0,0)";
  if (LIGHT_TEXT.has(v)) return theme.text;
  if (LIGHT_GRID.has(v)) return "rgba(255,255,255,0.14)";
  if (key === "color" && ON_DARK[v] && /(font|line)$/i.test(parent || "")) return ON_DARK[v];
  return node;
}

function forTheme(layout, theme) {
  if (!theme.dark) return layout;
  const out = themed(layout, theme, "", "");
  out.paper_bgcolor = "rgba(0,0,0,0)";
  out.plot_bgcolor = "rgba(0,0,0,0)";
  out.font = Object.assign({}, out.font || {}, { color: theme.text });
  return out;
}

function draw(gd, msg, Plotly) {
  const fig = msg.figure || {};
  const theme = pageTheme();
  gd.__glTheme = theme.key;
  const data = theme.dark ? (fig.data || []).map((t) => themed(t, theme, "", "")) : fig.data || [];
  return Plotly.react(gd, data, forTheme(fig.layout || {}, theme), chartConfig(gd, Plotly, msg));
}

// A theme switch (Streamlit's settings menu, or the system's) restyles the page's CSS:
// redraw every chart whose theme changed.
let themeWatch = null;
function watchTheme() {
  if (themeWatch) return;
  let pending = false;
  const check = () => {
    pending = false;
    const key = pageTheme().key;
    for (const gd of document.querySelectorAll(".gl-stream-chart")) {
      if (gd.__glDrawn && gd.__glTheme !== key && gd.__glLatest && window.Plotly) {
        draw(gd, gd.__glLatest, window.Plotly);
      }
    }
  };
  themeWatch = new MutationObserver(() => {
    if (!pending) { pending = true; setTimeout(check, 150); }
  });
  themeWatch.observe(document.head, { childList: true, subtree: true, characterData: true });
  if (window.matchMedia) {
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => setTimeout(check, 150));
  }
}

function drawLatest(gd) {
  const msg = gd.__glLatest;
  if (!msg || !gd.__glUrl) return;
  gd.__glStale = false;
  if (gd.__glTimer) { clearTimeout(gd.__glTimer); gd.__glTimer = null; }
  loadPlotly(gd.__glUrl)
    .then((Plotly) => {
      if (gd.__glLatest !== msg) return undefined; // a newer update arrived meanwhile
      watchTheme();
      return draw(gd, msg, Plotly).then(() => {
        gd.__glDrawn = true;
        gd.__glUpdates = (gd.__glUpdates || 0) + 1;
        gd.__glUpdatedAt = performance.now(); // when this draw finished (make bench)
      });
    })
    .catch((err) => {
      gd.textContent = `Chart could not be drawn: ${err.message}`;
    });
}

export default function render(component, base) {
  const { data, parentElement } = component;
  let msg;
  try {
    msg = decode(data);
  } catch (err) {
    parentElement.textContent = `Chart data could not be read: ${err.message}`;
    return undefined;
  }
  const gd = chartDiv(parentElement, msg.key);
  gd.style.height = `${msg.height}px`;
  gd.__glLatest = msg;
  gd.__glUrl = base + msg.plotly_path;
  if (gd.__glDrawn && !visible(gd)) {
    // out of view: draw the latest update within OFFSCREEN_MS (a trailing timer)
    gd.__glStale = true;
    if (!gd.__glTimer) {
      const wait = Math.max(0, OFFSCREEN_MS - (performance.now() - (gd.__glUpdatedAt || 0)));
      gd.__glTimer = setTimeout(() => { gd.__glTimer = null; drawLatest(gd); }, wait);
    }
  } else {
    drawLatest(gd);
  }
  // Streamlit calls this cleanup when the element leaves the page, but ALSO at once for an
  // update that a newer one overtook while this call was still in flight (the loader is
  // async). Removing the div there would remount the chart on busy pages, so the chart is
  // torn down only once its div has really left the document.
  return () => {
    setTimeout(() => {
      if (gd.isConnected) return;
      if (gd.__glResize) gd.__glResize.disconnect();
      if (gd.__glSeen) gd.__glSeen.disconnect();
      if (gd.__glTimer) clearTimeout(gd.__glTimer);
      if (window.Plotly) window.Plotly.purge(gd);
    }, 0);
  };
}

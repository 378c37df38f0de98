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
  return gd;
}

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
  const url = base + msg.plotly_path;
  loadPlotly(url)
    .then((Plotly) => {
      if (gd.__glLatest !== msg) return undefined; // a newer update arrived meanwhile
      const fig = msg.figure || {};
      return Plotly.react(gd, fig.data || [], fig.layout || {}, chartConfig(gd, Plotly, msg)).then(() => {
        gd.__glDrawn = true;
        gd.__glUpdates = (gd.__glUpdates || 0) + 1;
      });
    })
    .catch((err) => {
      gd.textContent = `Chart could not be drawn: ${err.message}`;
    });
  // Streamlit calls this cleanup when the element leaves the page, but ALSO at once for an
  // update that a newer one overtook while this call was still in flight (the loader is
  // async). Removing the div there would remount the chart on busy pages, so the chart is
  // torn down only once its div has really left the document.
  return () => {
    setTimeout(() => {
      if (gd.isConnected) return;
      if (gd.__glResize) gd.__glResize.disconnect();
      if (window.Plotly) window.Plotly.purge(gd);
    }, 0);
  };
}

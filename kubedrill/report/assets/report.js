/* kubedrill report: draws the panels described in #kd-data with uPlot (bundled above). */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("kd-data").textContent);
  var COLORS = {
    p50: "#4c78a8", p95: "#f58518", p99: "#e45756", slo: "#b00020", limit: "#999999",
    rate: "#4c78a8", errors: "#e45756", dropped: "#b279a2", curve: "#f58518"
  };
  var PALETTE = ["#4c78a8", "#54a24b", "#f58518", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d"];
  var plots = [];

  function fmt(v) {
    if (v === null || v === undefined) return "—";
    var a = Math.abs(v);
    return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
  }

  function overlay(sc) {
    // chaos injections as shaded bands, phase boundaries as labelled dashed lines
    return {
      hooks: {
        drawClear: [function (u) {
          var ctx = u.ctx, top = u.bbox.top, h = u.bbox.height;
          ctx.save();
          ctx.fillStyle = "rgba(228, 87, 86, 0.14)";
          (sc.bands || []).forEach(function (b) {
            var x0 = u.valToPos(b.start, "x", true), x1 = u.valToPos(b.end, "x", true);
            ctx.fillRect(Math.min(x0, x1), top, Math.max(Math.abs(x1 - x0), 2), h);
          });
          ctx.restore();
        }],
        draw: [function (u) {
          var ctx = u.ctx, top = u.bbox.top, h = u.bbox.height;
          var dpr = window.devicePixelRatio || 1;
          ctx.save();
          ctx.strokeStyle = "#555";
          ctx.fillStyle = "#333";
          ctx.setLineDash([4 * dpr, 3 * dpr]);
          ctx.font = (10 * dpr) + "px sans-serif";
          (sc.phases || []).forEach(function (p) {
            [p.start, p.end].forEach(function (t, i) {
              var x = u.valToPos(t, "x", true);
              ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + h); ctx.stroke();
              if (i === 0) ctx.fillText(p.name, x + 3 * dpr, top + 11 * dpr);
            });
          });
          ctx.restore();
        }]
      }
    };
  }

  function seriesOpts(s, i) {
    var color = COLORS[s.style] || PALETTE[i % PALETTE.length];
    var o = { label: s.label, stroke: color, width: 1.5, value: function (u, v) { return fmt(v); },
      points: { show: false } };
    if (s.style === "slo" || s.style === "limit") o.dash = [6, 4];
    if (s.scale) o.scale = s.scale;
    return o;
  }

  function axes(panel) {
    var out = [{}, { size: 56 }], seen = {};
    panel.series.forEach(function (s) {
      if (s.scale && !seen[s.scale]) {
        seen[s.scale] = true;
        out.push({ scale: s.scale, side: 1, size: 60, grid: { show: false }, label: s.scale });
      }
    });
    return out;
  }

  function width(el) { return Math.max(320, el.clientWidth || 900); }

  function makePlot(el, panel, sc, timeAxis, syncKey) {
    var series = [timeAxis ? { label: "time (UTC)", value: "{YYYY}-{MM}-{DD} {HH}:{mm}:{ss}" }
                           : { label: panel.x_label || "x" }];
    panel.series.forEach(function (s, i) { series.push(seriesOpts(s, i)); });
    var opts = {
      width: width(el), height: 170, series: series,
      scales: { x: { time: timeAxis } },
      axes: axes(panel),
      legend: { live: true },
      // the clock of the verdict table: UTC
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
      plugins: timeAxis ? [overlay(sc)] : []
    };
    if (syncKey) opts.cursor = { sync: { key: syncKey } };
    var cols = [panel.x];
    panel.series.forEach(function (s) { cols.push(s.values); });
    var u = new uPlot(opts, cols, el);
    plots.push({ u: u, el: el });
    return u;
  }

  var drawn = 0;
  (data.scenarios || []).forEach(function (sc, si) {
    sc.panels.forEach(function (panel) {
      if (panel.state !== "chart") return;
      var box = document.querySelector('[data-scenario-index="' + si + '"] [data-panel="' + panel.id + '"] .plot');
      if (!box) { console.error("kubedrill: no box for panel " + panel.id); return; }
      makePlot(box, panel, sc, true, "kd-" + si);
      box.parentNode.setAttribute("data-rendered", "1");
      drawn++;
    });
  });
  (data.curves || []).forEach(function (panel, ci) {
    var box = document.querySelector('[data-curve-index="' + ci + '"] .plot');
    if (!box) { console.error("kubedrill: no box for curve " + ci); return; }
    makePlot(box, panel, {}, false, null);
    box.parentNode.setAttribute("data-rendered", "1");
    drawn++;
  });

  function resize(w) {
    plots.forEach(function (p) { p.u.setSize({ width: w || width(p.el), height: 170 }); });
  }
  var pending = null;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(function () { resize(); }, 100);
  });
  window.addEventListener("beforeprint", function () { resize(680); });
  window.addEventListener("afterprint", function () { resize(); });
  document.body.setAttribute("data-panels-drawn", String(drawn));
})();

"use strict";
// A small mirrored, stacked bar chart on <canvas>: vehicles entering stack upwards
// (home province, then other provinces), vehicles leaving stack downwards.
// No library: the page must work offline and load nothing from elsewhere.

window.FlowChart = class FlowChart {
  static SERIES = [
    { key: "in_home", colour: "#2dd4bf", up: true },
    { key: "in_other", colour: "#f59e0b", up: true },
    { key: "out_home", colour: "#60a5fa", up: false },
    { key: "out_other", colour: "#f472b6", up: false },
  ];

  constructor(canvas) {
    this.canvas = canvas;
    this.buckets = [];
    this.labels = { in: "in", out: "out" };
    this.locale = "vi-VN";
    this.timeZone = "Asia/Ho_Chi_Minh";
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  // timeZone: the zone the axis shows times in (the deployment's, not the PC's)
  update(buckets, labels, locale, timeZone) {
    this.buckets = buckets;
    this.labels = labels;
    this.locale = locale;
    this.timeZone = timeZone;
    this.draw();
  }

  static niceStep(max, ticks) {
    const raw = Math.max(1, max) / ticks;
    const power = 10 ** Math.floor(Math.log10(raw));
    for (const factor of [1, 2, 5, 10]) {
      if (raw <= factor * power) return factor * power;
    }
    return 10 * power;
  }

  draw() {
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (!width || !height) return;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);

    const pad = { left: 46, right: 12, top: 14, bottom: 26 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    const total = (b, up) => FlowChart.SERIES.filter((s) => s.up === up).reduce((n, s) => n + b[s.key], 0);
    const maxIn = Math.max(1, ...this.buckets.map((b) => total(b, true)));
    const maxOut = Math.max(1, ...this.buckets.map((b) => total(b, false)));
    const step = FlowChart.niceStep(Math.max(maxIn, maxOut), 3);
    const topMax = Math.ceil(maxIn / step) * step;
    const bottomMax = Math.ceil(maxOut / step) * step;
    const scale = plotH / (topMax + bottomMax);
    const zeroY = pad.top + topMax * scale;

    ctx.font = "12px 'DejaVu Sans', 'Noto Sans', sans-serif";
    ctx.textBaseline = "middle";
    // grid and y labels (counts above and below the zero line)
    for (let v = -bottomMax; v <= topMax; v += step) {
      const y = Math.round(zeroY - v * scale) + 0.5;
      ctx.strokeStyle = v === 0 ? "#64748b" : "#1e293b";
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(pad.left, y);
      ctx.lineTo(width - pad.right, y);
      ctx.stroke();
      ctx.fillStyle = "#94a3b8";
      ctx.textAlign = "right";
      ctx.fillText(String(Math.abs(v)), pad.left - 8, y);
    }
    ctx.save();
    ctx.fillStyle = "#cbd5e1";
    ctx.textAlign = "left";
    ctx.fillText(`▲ ${this.labels.in}`, pad.left + 6, pad.top + 8);
    ctx.fillText(`▼ ${this.labels.out}`, pad.left + 6, height - pad.bottom - 8);
    ctx.restore();

    const n = this.buckets.length;
    if (!n) return;
    const slot = plotW / n;
    const barW = Math.max(1, slot * 0.72);
    this.buckets.forEach((bucket, i) => {
      const x = pad.left + i * slot + (slot - barW) / 2;
      let up = zeroY;
      let down = zeroY;
      for (const series of FlowChart.SERIES) {
        const h = bucket[series.key] * scale;
        if (!h) continue;
        ctx.fillStyle = series.colour;
        if (series.up) {
          up -= h;
          ctx.fillRect(x, up, barW, h);
        } else {
          ctx.fillRect(x, down, barW, h);
          down += h;
        }
      }
    });
    // x labels: every 10 minutes (or every sixth bucket)
    ctx.fillStyle = "#94a3b8";
    ctx.textAlign = "center";
    const format = new Intl.DateTimeFormat(this.locale, {
      hour: "2-digit", minute: "2-digit", timeZone: this.timeZone,
    });
    const minute = (at) => Number(format.formatToParts(at).find((part) => part.type === "minute").value);
    const every = n > 12 ? Math.ceil(n / 6) : 1;
    this.buckets.forEach((bucket, i) => {
      const at = new Date(bucket.bucket);
      const mark = n >= 30 ? minute(at) % 10 === 0 : i % every === 0;
      if (mark) ctx.fillText(format.format(at), pad.left + (i + 0.5) * slot, height - pad.bottom / 2);
    });
  }
};

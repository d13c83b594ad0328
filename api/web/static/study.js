"use strict";
// The study report's chart, drawn from the report the page carries (data-report): the seven emotion
// means per second over the stimulus and the share of viewers attending, withheld seconds greyed, micro-expression and top-moment
// markers, a scrubber synced to the stimulus player, and PNG export. Colours, fonts and sizes are SVG
// attributes rather than CSS so that the exported picture looks like the page.

// On a phone (the stylesheet's breakpoint) the chart is drawn narrower and taller with larger type: scaled to
// a 390 px screen it is about 250 px tall with 11 px labels, where the desktop drawing would be 100 px and 4 px.
const PHONE = window.matchMedia("(max-width: 40rem)").matches;
const CHART = PHONE ? { width: 400, height: 320, left: 44, right: 14, top: 20, bottom: 62 }
                    : { width: 800, height: 250, left: 40, right: 12, top: 20, bottom: 44 };
const FONT_SIZE = PHONE ? "13" : "11";
const LEGEND_PER_ROW = PHONE ? 4 : 8; // two rows on a phone, under the time axis
const LEGEND_STEP = PHONE ? 88 : 92;
const PLOT_WIDTH = CHART.width - CHART.left - CHART.right;
const PLOT_HEIGHT = CHART.height - CHART.top - CHART.bottom;
const INK = "#1d2330";
const MUTED = "#5b6474";
const WITHHELD_FILL = "#e3e6ec";
const MICRO_COLOUR = "#ff6d00";
const ATTENTION_COLOUR = INK;
const TICK_STEPS_S = [1, 2, 5, 10, 15, 30, 60, 120];
const MAX_TICKS = PHONE ? 6 : 12;
const PNG_SCALE = 2;
const PNG_TITLE_HEIGHT = 40; // the exported picture's own title band: study, audience, date

const holder = $("report-chart");
const report = JSON.parse(holder.dataset.report);
const durationMs = report.stimulus_duration_ms;
const player = $("player"); // absent when the study has no stored stimulus
let scrubber = null;

const x = (ms) => CHART.left + (Math.min(Math.max(ms, 0), durationMs) / durationMs) * PLOT_WIDTH;
const y = (p) => CHART.top + (1 - p) * PLOT_HEIGHT;
const bucketEnd = (startMs, lengthMs) => Math.min(startMs + lengthMs, durationMs); // the last one may be short
const bucketMiddle = (startMs, lengthMs) => (startMs + bucketEnd(startMs, lengthMs)) / 2;

function label(text, attributes) {
  const node = svgElement("text", { "font-family": "sans-serif", "font-size": FONT_SIZE, fill: MUTED, ...attributes });
  node.textContent = text;
  return node;
}

function titled(node, text) {
  const title = svgElement("title");
  title.textContent = text;
  node.append(title);
  return node;
}

// Runs of consecutive seconds with figures (`valueOf(bucket)`, null when withheld): withheld seconds
// are gaps in the curves, not zeros.
function curveRuns(valueOf) {
  const runs = [];
  let run = [];
  for (const bucket of report.buckets) {
    const value = valueOf(bucket);
    if (value === null) {
      if (run.length) runs.push(run);
      run = [];
      continue;
    }
    run.push({ start: bucket.start_ms, end: bucketEnd(bucket.start_ms, report.bucket_ms), p: value });
  }
  if (run.length) runs.push(run);
  return runs.map((points) => (points.length === 1
    ? [[points[0].start, points[0].p], [points[0].end, points[0].p]] // one second alone: a short level line
    : points.map((point) => [(point.start + point.end) / 2, point.p])));
}

function drawAxes(svg) {
  svg.append(svgElement("rect", { x: "0", y: "0", width: String(CHART.width), height: String(CHART.height),
                                  fill: "#ffffff" }),
             svgElement("rect", { x: String(CHART.left), y: String(CHART.top), width: String(PLOT_WIDTH),
                                  height: String(PLOT_HEIGHT), fill: "#fafbfd", stroke: "#d9dde5" }));
  for (const bucket of report.buckets) {
    if (bucket.enough_viewers) continue;
    const end = bucketEnd(bucket.start_ms, report.bucket_ms);
    svg.append(titled(svgElement("rect", {
      class: "withheld", x: String(x(bucket.start_ms)), y: String(CHART.top),
      width: String(Math.max(0.5, x(end) - x(bucket.start_ms))), height: String(PLOT_HEIGHT), fill: WITHHELD_FILL,
    }), `${bucket.start_ms / 1000} s: ${bucket.viewers_with_face} of ${report.min_viewers} viewers with a face`
        + " needed; figures withheld"));
  }
  for (const p of [0, 0.5, 1]) {
    svg.append(svgElement("line", { x1: String(CHART.left), x2: String(CHART.left + PLOT_WIDTH), y1: String(y(p)),
                                    y2: String(y(p)), stroke: "#d9dde5", "stroke-dasharray": p % 1 ? "3 3" : "" }),
               label(`${p * 100}%`, { x: String(CHART.left - 5), y: String(y(p) + 4), "text-anchor": "end" }));
  }
  const step = TICK_STEPS_S.find((s) => durationMs / 1000 / s <= MAX_TICKS) || TICK_STEPS_S[TICK_STEPS_S.length - 1];
  for (let s = 0; s * 1000 <= durationMs; s += step) {
    svg.append(label(`${s} s`, { x: String(x(s * 1000)), y: String(CHART.top + PLOT_HEIGHT + 14),
                                 "text-anchor": "middle" }));
  }
  const legend = [...EMOTIONS.map((emotion) => [emotion, EMOTION_COLOURS[emotion]]), ["attention", ATTENTION_COLOUR]];
  const rows = Math.ceil(legend.length / LEGEND_PER_ROW);
  legend.forEach(([name, colour], index) => { // the legend inside the picture, so that the PNG carries it
    const left = CHART.left + (index % LEGEND_PER_ROW) * LEGEND_STEP;
    const top = CHART.height - 16 - (rows - 1 - Math.floor(index / LEGEND_PER_ROW)) * 18;
    svg.append(svgElement("rect", { x: String(left), y: String(top), width: "10", height: "10", fill: colour }),
               label(name, { x: String(left + 14), y: String(top + 9), fill: INK }));
  });
}

const polyline = (run) => run.map(([ms, p]) => `${x(ms).toFixed(1)},${y(p).toFixed(1)}`).join(" ");

function drawCurves(svg) {
  for (const emotion of EMOTIONS) {
    for (const run of curveRuns((bucket) => (bucket.emotions ? bucket.emotions[emotion].mean : null))) {
      svg.append(svgElement("polyline", {
        class: "emotion-curve", "data-emotion": emotion, fill: "none", stroke: EMOTION_COLOURS[emotion],
        "stroke-width": "1.8", "stroke-linejoin": "round", points: polyline(run),
      }));
    }
  }
  // Attention: the share of viewers present and facing the screen, dashed so it reads apart from emotions.
  for (const run of curveRuns((bucket) => (bucket.attention ? bucket.attention.share : null))) {
    svg.append(svgElement("polyline", {
      class: "attention-curve", fill: "none", stroke: ATTENTION_COLOUR, "stroke-width": "1.5",
      "stroke-dasharray": "5 3", "stroke-linejoin": "round", points: polyline(run),
    }));
  }
}

// Each second's figures on hover: an invisible band over the plot, titled with them.
function bucketText(bucket) {
  const at = `${bucket.start_ms / 1000} s`;
  const attention = bucket.attention
    ? `attention ${percent(bucket.attention.share)} (${percent(bucket.attention.ci95[0])}–${percent(bucket.attention.ci95[1])})`
    : "attention withheld";
  if (!bucket.emotions) {
    return `${at}: ${bucket.viewers_with_face} of ${report.min_viewers} viewers with a face needed; ${attention}`;
  }
  const emotions = EMOTIONS.map((emotion) => {
    const { mean, ci95 } = bucket.emotions[emotion];
    return `${emotion} ${percent(mean)} (${percent(ci95[0])}–${percent(ci95[1])})`;
  });
  return `${at}, ${bucket.viewers_with_face} viewers with a face: ${emotions.join(", ")}; ${attention}`;
}

function drawHoverBands(svg) {
  for (const bucket of report.buckets) {
    const end = bucketEnd(bucket.start_ms, report.bucket_ms);
    svg.append(titled(svgElement("rect", {
      class: "bucket-band", x: String(x(bucket.start_ms)), y: String(CHART.top),
      width: String(Math.max(0.5, x(end) - x(bucket.start_ms))), height: String(PLOT_HEIGHT), fill: "transparent",
    }), bucketText(bucket)));
  }
}

function drawMarkers(svg) {
  for (const bucket of report.buckets) {
    const counts = Object.entries(bucket.micro_expressions);
    const total = counts.reduce((sum, [, n]) => sum + n, 0);
    if (!total) continue;
    const at = x(bucketMiddle(bucket.start_ms, report.bucket_ms));
    const marker = svgElement("g", { class: "micro-marker", "data-start-ms": String(bucket.start_ms) });
    titled(marker, `${bucket.start_ms / 1000} s: ${total} micro-expression${total === 1 ? "" : "s"} started (`
      + `${counts.map(([emotion, n]) => `${emotion} ${n}`).join(", ")})`);
    marker.append(svgElement("polygon", { points: `${at - 6},2 ${at + 6},2 ${at},${CHART.top - 4}`,
                                          fill: MICRO_COLOUR }));
    marker.addEventListener("click", (click) => { click.stopPropagation(); seekTo(bucket.start_ms); });
    svg.append(marker);
  }
  for (const moment of report.top_moments) { // per second, whatever the report's bucket length
    const marker = svgElement("circle", {
      class: "moment-marker", "data-time-ms": String(moment.time_ms), r: "5", fill: EMOTION_COLOURS[moment.emotion],
      stroke: "#ffffff", "stroke-width": "1.5", cx: String(x(bucketMiddle(moment.time_ms, 1000))), cy: String(y(moment.mean)),
    });
    titled(marker, `${moment.time_ms / 1000} s: ${moment.emotion} ${percent(moment.lift)} above the viewers' own`
      + ` average (p = ${moment.p_adjusted.toPrecision(2)} adjusted)`);
    marker.addEventListener("click", (click) => { click.stopPropagation(); seekTo(moment.time_ms); });
    svg.append(marker);
  }
}

function drawChart() {
  const svg = svgElement("svg", { class: "study-chart", viewBox: `0 0 ${CHART.width} ${CHART.height}`, role: "img",
                                  "aria-label": "Mean emotion probabilities per second of the stimulus" });
  drawAxes(svg);
  drawHoverBands(svg);
  drawCurves(svg);
  drawMarkers(svg);
  scrubber = svgElement("line", { class: "scrubber", x1: String(x(0)), x2: String(x(0)), y1: String(CHART.top),
                                  y2: String(CHART.top + PLOT_HEIGHT), stroke: INK, "stroke-width": "1.5" });
  svg.append(scrubber);
  svg.addEventListener("click", (click) => {
    const box = svg.getBoundingClientRect();
    const chartX = ((click.clientX - box.left) / box.width) * CHART.width;
    seekTo(((chartX - CHART.left) / PLOT_WIDTH) * durationMs);
  });
  holder.replaceChildren(svg);
}

function moveScrubber(ms) {
  const at = String(x(ms));
  scrubber.setAttribute("x1", at);
  scrubber.setAttribute("x2", at);
  scrubber.dataset.ms = String(Math.round(Math.min(Math.max(ms, 0), durationMs)));
}

function seekTo(ms) {
  const clamped = Math.min(Math.max(ms, 0), durationMs);
  moveScrubber(clamped);
  if (player) seek(player, clamped);
}

function syncWithPlayer() {
  if (!player) return;
  const follow = () => moveScrubber(player.currentTime * 1000);
  for (const type of ["timeupdate", "seeked", "loadeddata"]) player.addEventListener(type, follow);
  if ("requestVideoFrameCallback" in player) { // smooth while playing, frame by frame
    const onFrame = (_now, metadata) => {
      moveScrubber(metadata.mediaTime * 1000);
      player.requestVideoFrameCallback(onFrame);
    };
    player.requestVideoFrameCallback(onFrame);
  }
}

// The chart under a title band that says what it is, so the picture stands alone in a client's deck.
function titledPicture() {
  const height = CHART.height + PNG_TITLE_HEIGHT;
  const picture = svgElement("svg", { xmlns: SVG_NS, viewBox: `0 0 ${CHART.width} ${height}`,
                                      width: String(CHART.width * PNG_SCALE), height: String(height * PNG_SCALE) });
  const chart = holder.querySelector("svg").cloneNode(true);
  chart.setAttribute("y", String(PNG_TITLE_HEIGHT));
  chart.setAttribute("width", String(CHART.width));
  chart.setAttribute("height", String(CHART.height));
  const audience = `${report.viewers} ${report.viewers === 1 ? "viewer" : "viewers"}`;
  const attention = report.attention ? ` · attention ${percent(report.attention.mean)} on average` : "";
  picture.append(
    svgElement("rect", { x: "0", y: "0", width: String(CHART.width), height: String(height), fill: "#ffffff" }),
    label(holder.dataset.studyName, { x: String(CHART.left), y: "18", "font-size": "15", fill: INK,
                                      "font-weight": "bold" }),
    label(`${audience}${attention} · mean emotion probabilities per second · exported `
          + `${new Date().toISOString().slice(0, 10)}`, { x: String(CHART.left), y: "34" }),
    chart,
  );
  return { picture, height };
}

async function exportPng() {
  const { picture, height } = titledPicture();
  const url = URL.createObjectURL(new Blob([new XMLSerializer().serializeToString(picture)],
                                           { type: "image/svg+xml" }));
  try {
    const image = new Image();
    image.src = url;
    await image.decode();
    const canvas = element("canvas", { width: String(CHART.width * PNG_SCALE),
                                       height: String(height * PNG_SCALE) });
    canvas.getContext("2d").drawImage(image, 0, 0);
    const png = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    download(png, `${holder.dataset.studyId}-chart.png`);
  } finally {
    URL.revokeObjectURL(url);
  }
}

function init() {
  drawChart();
  syncWithPlayer();
  document.querySelectorAll(".moment-button").forEach((button) => {
    button.addEventListener("click", () => seekTo(Number(button.dataset.timeMs)));
  });
  $("png-export").addEventListener("click", exportPng);
}

init();

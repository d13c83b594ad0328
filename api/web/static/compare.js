"use strict";
// The comparison page's chart: one score (an emotion's mean or attention) per second for each compared
// study, with its 95% band, on one stimulus clock; the select switches the score. Withheld seconds are gaps.

const COMPARE_CHART = { width: 800, height: 260, left: 40, right: 12, top: 12, bottom: 44 };
const COMPARE_PLOT_WIDTH = COMPARE_CHART.width - COMPARE_CHART.left - COMPARE_CHART.right;
const COMPARE_PLOT_HEIGHT = COMPARE_CHART.height - COMPARE_CHART.top - COMPARE_CHART.bottom;
const STUDY_COLOURS = ["#1f5fd6", "#d6561f", "#2a9d3f", "#8e3bc4", "#b8860b"];

const compareHolder = $("compare-chart");
const comparison = JSON.parse(compareHolder.dataset.comparison);
const longestMs = Math.max(...comparison.studies.map((study) => study.stimulus_duration_ms));
const cx = (ms) => COMPARE_CHART.left + (Math.min(ms, longestMs) / longestMs) * COMPARE_PLOT_WIDTH;
const cy = (p) => COMPARE_CHART.top + (1 - p) * COMPARE_PLOT_HEIGHT;

// The score's { mean, low, high } in a bucket, or null where withheld.
function figure(bucket, score) {
  if (score === "attention") {
    return bucket.attention ? { mean: bucket.attention.share, low: bucket.attention.ci95[0],
                                high: bucket.attention.ci95[1] } : null;
  }
  if (!bucket.emotions) return null;
  const { mean, ci95 } = bucket.emotions[score];
  return { mean, low: ci95[0], high: ci95[1] };
}

// Runs of consecutive seconds with figures, each point at the middle of its second.
function runs(study, score) {
  const out = [];
  let run = [];
  for (const bucket of study.buckets) {
    const value = figure(bucket, score);
    if (value === null) {
      if (run.length) out.push(run);
      run = [];
      continue;
    }
    const end = Math.min(bucket.start_ms + comparison.bucket_ms, study.stimulus_duration_ms);
    run.push({ ms: (bucket.start_ms + end) / 2, ...value });
  }
  if (run.length) out.push(run);
  return out;
}

function compareLabel(text, attributes) {
  const node = svgElement("text", { "font-family": "sans-serif", "font-size": "11", fill: "#5b6474", ...attributes });
  node.textContent = text;
  return node;
}

function drawComparison(score) {
  const svg = svgElement("svg", { class: "study-chart compare-chart", viewBox: `0 0 ${COMPARE_CHART.width} `
    + `${COMPARE_CHART.height}`, role: "img", "aria-label": `${score} per second, study by study` });
  svg.append(svgElement("rect", { x: String(COMPARE_CHART.left), y: String(COMPARE_CHART.top),
                                  width: String(COMPARE_PLOT_WIDTH), height: String(COMPARE_PLOT_HEIGHT),
                                  fill: "#fafbfd", stroke: "#d9dde5" }));
  for (const p of [0, 0.5, 1]) {
    svg.append(compareLabel(`${p * 100}%`, { x: String(COMPARE_CHART.left - 5), y: String(cy(p) + 4),
                                             "text-anchor": "end" }));
  }
  const step = Math.max(1, Math.ceil(longestMs / 1000 / 10));
  for (let s = 0; s * 1000 <= longestMs; s += step) {
    svg.append(compareLabel(`${s} s`, { x: String(cx(s * 1000)), y: String(COMPARE_CHART.top + COMPARE_PLOT_HEIGHT + 14),
                                        "text-anchor": "middle" }));
  }
  comparison.studies.forEach((study, index) => {
    const colour = STUDY_COLOURS[index % STUDY_COLOURS.length];
    for (const run of runs(study, score)) {
      const upper = run.map((point) => `${cx(point.ms).toFixed(1)},${cy(point.high).toFixed(1)}`);
      const lower = run.slice().reverse().map((point) => `${cx(point.ms).toFixed(1)},${cy(point.low).toFixed(1)}`);
      svg.append(svgElement("polygon", { class: "compare-band", "data-study-id": study.study_id, fill: colour,
                                         "fill-opacity": "0.15", points: [...upper, ...lower].join(" ") }));
      svg.append(svgElement("polyline", {
        class: "compare-curve", "data-study-id": study.study_id, fill: "none", stroke: colour, "stroke-width": "2",
        points: run.map((point) => `${cx(point.ms).toFixed(1)},${cy(point.mean).toFixed(1)}`).join(" "),
      }));
    }
    const left = COMPARE_CHART.left + index * 160;
    const top = COMPARE_CHART.height - 16;
    svg.append(svgElement("rect", { x: String(left), y: String(top), width: "10", height: "10", fill: colour }),
               compareLabel(`${study.name} (${study.viewers})`, { x: String(left + 14), y: String(top + 9),
                                                                  fill: "#1d2330" }));
  });
  compareHolder.replaceChildren(svg);
}

const scoreSelect = $("compare-score");
scoreSelect.addEventListener("change", () => drawComparison(scoreSelect.value));
drawComparison(scoreSelect.value);

"use strict";
// The demo page: the visitor's photo, clip or webcam picture goes to POST /v1/analyze with their own
// key, and the JSON answer is drawn over the media. Helpers (element, call, legend…) are common.js's.

const FACE_COLOURS = ["#00c853", "#ff4081", "#2979ff", "#ff9100", "#d500f9", "#00b8d4"];
// sessionStorage, not localStorage: the key is forgotten when the tab closes.
const KEY_STORAGE = "emoscope.demo.key";
const JOB_POLL_MS = 1000;
// The overlay canvas is stretched over the media by CSS; past this many pixels it only costs memory.
const MAX_OVERLAY_SIDE = 1600;
// The chart is drawn in CSS pixels (its width is its container's), so its labels read the same on a phone.
const CHART_HEIGHT = 120;
const CHART_MARGIN = { left: 46, right: 10, top: 16, bottom: 32 };
const TIME_STEPS_S = [0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60];
// How long to wait for the browser to read a clip's header before asking the server for stills.
const PROBE_TIMEOUT_MS = 5000;

let mediaUrl = null;     // blob: URL of the media on show, revoked when the next one replaces it
let stillUrls = [];      // blob: URLs of the stills on show (clips this browser cannot play)
let clipListeners = null; // AbortController of the current clip's listeners
let camera = null;       // the live MediaStream, only between consent and capture
let redrawOverlay = null; // repaints the boxes of the media on show (the page may be resized)

// ---- the key: from the console's or `make run`'s link (#key=...), the field, or this tab's storage

function initKey() {
  const field = $("api-key");
  const fromLink = new URLSearchParams(location.hash.slice(1)).get("key");
  if (fromLink) {
    sessionStorage.setItem(KEY_STORAGE, fromLink);
    history.replaceState(null, "", location.pathname + location.search); // out of the address bar and history
  }
  field.value = sessionStorage.getItem(KEY_STORAGE) || "";
  field.addEventListener("change", () => sessionStorage.setItem(KEY_STORAGE, field.value.trim()));
  // The way to a key is offered while there is none.
  const offerKey = () => { $("keyless").hidden = Boolean(field.value.trim()); };
  field.addEventListener("input", offerKey);
  offerKey();
}

// ---- the API

async function waitForJob(job, key) {
  for (;;) {
    if (job.status === "succeeded") {
      if (!job.result) throw new Error("The job's result is no longer kept.");
      return job.result;
    }
    if (job.status === "failed") throw new Error(job.error ? job.error.detail : "The job failed.");
    const { frames_done: done, frames_total: total } = job.progress;
    setStatus(`Job ${job.status}: ${done}${total ? ` of ${total}` : ""} frames analysed…`);
    await sleep(JOB_POLL_MS);
    job = (await call(`/v1/jobs/${encodeURIComponent(job.id)}`, key)).body;
  }
}

// Whether this browser shows the clip's pictures: Chromium without HEVC plays a .mov's sound only, and
// no browser plays a GIF in a <video>.
function canShowPictures(blob) {
  if (blob.type === "image/gif") return Promise.resolve(false);
  if (blob.type.startsWith("image/")) return Promise.resolve(true);
  return new Promise((resolve) => {
    const probe = element("video");
    const url = URL.createObjectURL(blob);
    let timer = null;
    const settle = (shows) => {
      clearTimeout(timer);
      URL.revokeObjectURL(url);
      probe.removeAttribute("src");
      resolve(shows);
    };
    timer = setTimeout(() => settle(false), PROBE_TIMEOUT_MS);
    probe.addEventListener("loadedmetadata", () => settle(probe.videoWidth > 0), { once: true });
    probe.addEventListener("error", () => settle(false), { once: true });
    probe.muted = true;
    probe.preload = "metadata";
    probe.src = url;
  });
}

async function analyze(blob, name) {
  const key = $("api-key").value.trim();
  if (!key) throw new Error("Paste an API key first; without one, create a free account (the link above the field).");
  sessionStorage.setItem(KEY_STORAGE, key);
  const form = new FormData();
  form.append("file", blob, name);
  if ($("fps").value) form.append("fps", $("fps").value);
  form.append("detector", $("detector").value);
  if ($("mesh").checked) form.append("return_mesh", "true");
  // Stills of the analysed frames stand in for a clip the browser cannot show (ignored for pictures).
  const showsPictures = await canShowPictures(blob);
  if (!showsPictures) form.append("return_stills", "true");
  setStatus("Analysing…");
  const { status, body } = await call("/v1/analyze", key, { method: "POST", body: form });
  // 202: long clips (or async requests) become jobs; the page waits for this one.
  const result = status === 202 ? await waitForJob(body, key) : body;
  await show(blob, result);
  setStatus(`Done: ${Math.round(result.timing_ms.total)} ms of analysis on the server.`);
}

async function run(task) {
  $("error").hidden = true;
  const buttons = document.querySelectorAll("#demo-form button, #webcam button");
  buttons.forEach((button) => { button.disabled = true; });
  try {
    await task();
  } catch (error) {
    // The answer on screen belongs to the previous file: it must not pass for this one's.
    resetResult();
    $("result").hidden = true;
    showError(error.message);
  } finally {
    buttons.forEach((button) => { button.disabled = false; });
  }
}

// ---- drawing

// `labels`: the element over the media that holds each face's label (text, so it never blurs or overlaps).
function prepareOverlay(canvas, labels, media) {
  const scale = Math.min(1, MAX_OVERLAY_SIDE / Math.max(media.width, media.height));
  canvas.width = Math.round(media.width * scale);
  canvas.height = Math.round(media.height * scale);
  const context = canvas.getContext("2d");
  context.setTransform(scale, 0, 0, scale, 0, 0); // draw in the API's source-pixel coordinates
  return { canvas, context, scale, media, labels };
}

function drawFaces(overlay, faces, colourOf, labelOf) {
  const { canvas, context, scale, media } = overlay;
  context.clearRect(0, 0, media.width, media.height);
  // Lines are sized in CSS pixels as shown, whatever the media's resolution.
  const shownWidth = canvas.getBoundingClientRect().width;
  const unit = shownWidth ? media.width / shownWidth : 1 / scale;
  context.lineWidth = 2.5 * unit;
  faces.forEach((face, index) => {
    const { x, y, w, h } = face.box;
    context.strokeStyle = colourOf(face, index);
    context.strokeRect(x, y, w, h);
    if (face.mesh) {
      context.fillStyle = colourOf(face, index);
      const dot = 1.5 * unit;
      for (const [px, py] of face.mesh) context.fillRect(px - dot / 2, py - dot / 2, dot, dot);
    }
  });
  placeLabels(overlay.labels, faces.map((face, index) => ({
    box: face.box, text: labelOf(face, index), colour: colourOf(face, index),
  })), shownWidth ? shownWidth / media.width : 0);
}

const overlapping = (a, b) => a.left < b.left + b.width && b.left < a.left + a.width
  && a.top < b.top + b.height && b.top < a.top + a.height;

// Each label above its box, else below it, else inside its top edge; where every place is taken
// (faces side by side on a phone), stacked under the labels already placed. Never over another label.
function placeLabels(layer, items, cssPerPixel) {
  layer.replaceChildren();
  if (!cssPerPixel) return;
  const bounds = layer.getBoundingClientRect();
  const placed = [];
  for (const { box, text, colour } of items) {
    const label = element("span", { class: "face-label" }, text);
    label.style.backgroundColor = colour; // CSSOM, which a strict style-src allows
    layer.append(label);
    const { width, height } = label.getBoundingClientRect();
    const x = box.x * cssPerPixel;
    const y = box.y * cssPerPixel;
    const left = Math.max(0, Math.min(x, bounds.width - width));
    const free = (top) => !placed.some((other) => overlapping(other, { left, top, width, height }));
    const inside = (top) => top >= 0 && top + height <= bounds.height;
    let top = [y - height, y + box.h * cssPerPixel, y].find((t) => inside(t) && free(t));
    if (top === undefined) {
      top = Math.max(0, y - height);
      while (!free(top)) top += height;
    }
    label.style.left = `${left}px`;
    label.style.top = `${top}px`;
    placed.push({ left, top, width, height });
  }
}

const degrees = (value) => `${value > 0 ? "+" : ""}${Math.round(value)}°`;

function poseText(pose, facing) {
  return `Head: yaw ${degrees(pose.yaw)}, pitch ${degrees(pose.pitch)}, roll ${degrees(pose.roll)}`
    + ` · ${facing ? "facing the camera" : "turned away"}`;
}

function faceCard(title, colour, emotions, dominant, pose = null, facing = null) {
  const card = element("article", { class: "face-card" });
  const heading = element("h3");
  const swatch = element("span", { class: "swatch", "aria-hidden": "true" });
  swatch.style.backgroundColor = colour; // CSSOM, which a strict style-src allows (markup styles it does not)
  heading.append(swatch, `${title}: ${dominant}`);
  card.append(heading);
  if (pose) card.append(element("p", { class: "pose" }, poseText(pose, facing)));
  for (const emotion of EMOTIONS) {
    const row = element("div", { class: "bar-row" });
    const meter = element("meter", { class: "emotion-bar", "data-emotion": emotion, min: "0", max: "1",
                                     value: String(emotions[emotion]) });
    row.append(element("span", { class: "bar-label" }, emotion), meter,
               element("span", { class: "bar-value" }, percent(emotions[emotion])));
    if (emotion === dominant) row.classList.add("dominant");
    card.append(row);
  }
  return card;
}

function resetResult() {
  if (mediaUrl) URL.revokeObjectURL(mediaUrl);
  stillUrls.forEach((url) => URL.revokeObjectURL(url));
  stillUrls = [];
  if (clipListeners) clipListeners.abort();
  clipListeners = null;
  redrawOverlay = null;
  for (const id of ["faces", "timelines", "events", "photo-labels", "clip-labels", "still-labels"]) {
    $(id).replaceChildren();
  }
  $("image-stage").hidden = true;
  $("video-stage").hidden = true;
  $("still-player").hidden = true;
  $("clip").removeAttribute("src");
  $("still").removeAttribute("src");
  $("result").hidden = false;
}

async function show(blob, result) {
  resetResult();
  mediaUrl = URL.createObjectURL(blob);
  if (result.media.type === "image") await showImage(result);
  else showClip(result);
}

async function showImage(result) {
  const faceColour = (face, index) => FACE_COLOURS[index % FACE_COLOURS.length];
  $("photo").src = mediaUrl;
  $("image-stage").hidden = false;
  await $("photo").decode(); // laid out at its shown size before the boxes are sized to it
  const overlay = prepareOverlay($("photo-overlay"), $("photo-labels"), result.media);
  redrawOverlay = () => drawFaces(overlay, result.faces, faceColour,
                                  (face, index) => `${index + 1} ${face.dominant_emotion} `
                                                   + percent(face.emotions[face.dominant_emotion]));
  redrawOverlay();
  const { media, faces } = result;
  $("result-title").textContent = `${faces.length} ${faces.length === 1 ? "face" : "faces"}`;
  $("result-summary").textContent = `${media.width}×${media.height} ${media.format} · detector ${result.model.detector}`
    + ` · emotion model ${result.model.emotion}`;
  if (!faces.length) $("faces").append(element("p", {}, "No face found in this picture."));
  faces.forEach((face, index) => {
    $("faces").append(faceCard(`Face ${index + 1}`, faceColour(face, index), face.emotions, face.dominant_emotion,
                               face.head_pose, face.facing_camera));
  });
}

// ---- clips: boxes follow playback, one timeline per track, events seek to their apex

const trackColour = (trackId) => FACE_COLOURS[(trackId - 1) % FACE_COLOURS.length];

function frameAt(frames, ms, tolerance) {
  let low = 0;
  let high = frames.length - 1;
  let found = null;
  while (low <= high) { // the last frame at or before `ms`
    const middle = (low + high) >> 1;
    if (frames[middle].timestamp_ms <= ms + 1) { found = frames[middle]; low = middle + 1; } else high = middle - 1;
  }
  return found && ms - found.timestamp_ms <= tolerance ? found : null;
}

function showClip(result) {
  const listeners = new AbortController();
  clipListeners = listeners;
  const frames = [...result.frames].sort((a, b) => a.timestamp_ms - b.timestamp_ms);
  // A frame's boxes stay up until the next analysed frame, and not much longer past the last one.
  const tolerance = 1.5 * result.temporal_resolution_ms;
  const durationMs = result.media.duration_ms || (frames.length ? frames[frames.length - 1].timestamp_ms : 1);
  const stills = result.stills || [];
  const overlay = stills.length ? prepareOverlay($("still-overlay"), $("still-labels"), result.media)
    : prepareOverlay($("clip-overlay"), $("clip-labels"), result.media);
  const chartWidth = Math.round(Math.min(900, Math.max(240, $("timelines").clientWidth
                                                        - CHART_MARGIN.left - CHART_MARGIN.right)));
  const playheads = [];
  const draw = (ms) => {
    const frame = frameAt(frames, ms, tolerance);
    drawFaces(overlay, frame ? frame.faces : [], (face) => trackColour(face.track_id),
              (face) => `#${face.track_id} ${face.dominant_emotion}`);
    const x = String(Math.min(1, ms / durationMs) * chartWidth);
    playheads.forEach((line) => { line.setAttribute("x1", x); line.setAttribute("x2", x); });
  };
  const seekTo = stills.length ? showStills(stills, draw, listeners.signal) : playClip(draw, listeners.signal);

  const { tracks, micro_expressions: events } = result;
  $("result-title").textContent = `${tracks.length} face ${tracks.length === 1 ? "track" : "tracks"}`;
  $("result-summary").textContent = `${seconds(durationMs)} clip · ${frames.length} frames analysed at `
    + `${result.sample_fps.toFixed(1)} fps · detector ${result.model.detector} · emotion model ${result.model.emotion}`;
  for (const track of tracks) {
    $("faces").append(faceCard(`Track #${track.track_id} (mean)`, trackColour(track.track_id),
                               track.summary.emotions, track.summary.dominant_emotion));
    const chart = timelineChart(track, durationMs, events.filter((e) => e.track_id === track.track_id), seekTo,
                                chartWidth);
    playheads.push(chart.playhead);
    $("timelines").append(chart.figure);
  }
  $("timelines").prepend(legend());
  $("events").append(eventList(events, seekTo));
}

// The clip in the browser's player, boxes following playback; returns how to seek (ms).
function playClip(draw, signal) {
  const video = $("clip");
  video.src = mediaUrl;
  $("video-stage").hidden = false;
  const redraw = () => draw(video.currentTime * 1000);
  redrawOverlay = redraw;
  for (const type of ["loadeddata", "seeked", "timeupdate"]) video.addEventListener(type, redraw, { signal });
  if ("requestVideoFrameCallback" in video) { // smooth boxes while playing, frame by frame
    const onFrame = (_now, metadata) => {
      if (signal.aborted) return;
      draw(metadata.mediaTime * 1000);
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  }
  return (ms) => seek(video, ms);
}

function jpegUrl(base64) {
  const bytes = Uint8Array.from(atob(base64), (character) => character.charCodeAt(0));
  return URL.createObjectURL(new Blob([bytes], { type: "image/jpeg" }));
}

// A clip the browser cannot show: the server's stills of the analysed frames, one at a time, chosen with
// a slider (or the arrow keys on it); returns how to seek (ms), to the still nearest that moment.
function showStills(stills, draw, signal) {
  stillUrls = stills.map((still) => jpegUrl(still.jpeg_base64));
  const picture = $("still");
  const scrubber = $("still-scrubber");
  scrubber.max = String(stills.length - 1);
  let shown = 0;
  const redraw = () => draw(stills[shown].timestamp_ms);
  const showStill = (index) => {
    shown = index;
    scrubber.value = String(index);
    picture.src = stillUrls[index];
    $("still-time").textContent = `${seconds(stills[index].timestamp_ms)} · frame ${stills[index].frame_index}`
      + ` · still ${index + 1} of ${stills.length}`;
  };
  redrawOverlay = redraw;
  picture.addEventListener("load", redraw, { signal }); // boxes and labels sized to the picture as shown
  scrubber.addEventListener("input", () => showStill(Number(scrubber.value)), { signal });
  $("still-player").hidden = false;
  showStill(0);
  return (ms) => {
    let nearest = 0;
    stills.forEach((still, index) => {
      if (Math.abs(still.timestamp_ms - ms) < Math.abs(stills[nearest].timestamp_ms - ms)) nearest = index;
    });
    showStill(nearest);
  };
}

function timeStep(durationS, width) {
  const most = Math.max(2, Math.floor(width / 70)); // tick labels about 70 px apart at least
  return TIME_STEPS_S.find((step) => durationS / step <= most) || TIME_STEPS_S[TIME_STEPS_S.length - 1];
}

function chartText(x, y, text, attributes = {}) {
  const node = svgElement("text", { x: String(x), y: String(y), ...attributes });
  node.textContent = text;
  return node;
}

// Axes: time in seconds along the bottom, probability 0 to 1 up the side, each with its title.
function chartAxes(width, durationMs, x) {
  const axes = svgElement("g", { class: "axes" });
  const yAxis = svgElement("g", { class: "y-axis" });
  for (const p of [0, 0.5, 1]) {
    const y = String(CHART_HEIGHT - p * CHART_HEIGHT);
    yAxis.append(svgElement("line", { class: "grid", x1: "0", x2: String(width), y1: y, y2: y }),
                 chartText(-6, CHART_HEIGHT - p * CHART_HEIGHT + 4, String(p), { class: "tick-label", "text-anchor": "end" }));
  }
  yAxis.append(chartText(-CHART_HEIGHT / 2, -CHART_MARGIN.left + 11, "probability",
                         { class: "axis-title", "text-anchor": "middle", transform: "rotate(-90)" }));
  const xAxis = svgElement("g", { class: "x-axis" });
  const step = timeStep(durationMs / 1000, width);
  for (let i = 0; i * step * 1000 <= durationMs + 1; i += 1) {
    const at = x(i * step * 1000);
    const label = Number((i * step).toFixed(2)).toString();
    xAxis.append(svgElement("line", { class: "tick", x1: String(at), x2: String(at), y1: String(CHART_HEIGHT),
                                      y2: String(CHART_HEIGHT + 4) }),
                 chartText(at, CHART_HEIGHT + 15, label, { class: "tick-label", "text-anchor": "middle" }));
  }
  xAxis.append(chartText(width, CHART_HEIGHT + 29, "time (s)", { class: "axis-title", "text-anchor": "end" }));
  axes.append(yAxis, xAxis);
  return axes;
}

function timelineChart(track, durationMs, events, seekTo, width) {
  const x = (ms) => (Math.min(ms, durationMs) / durationMs) * width;
  const y = (p) => CHART_HEIGHT - p * CHART_HEIGHT;
  const figure = element("figure", { class: "timeline", "data-track-id": String(track.track_id) });
  figure.append(element("figcaption", {}, `Face #${track.track_id}: ${seconds(track.start_ms)} to `
    + `${seconds(track.end_ms)}, mostly ${track.summary.dominant_emotion}. Click to seek; ▼ marks an expression's `
    + "strongest moment (its apex)."));
  const { left, right, top, bottom } = CHART_MARGIN;
  const chart = svgElement("svg", { class: "timeline-chart",
                                    viewBox: `${-left} ${-top} ${width + left + right} ${CHART_HEIGHT + top + bottom}`,
                                    role: "img", "aria-label": `Emotion probabilities of face ${track.track_id} over time` });
  const area = svgElement("rect", { class: "chart-area", x: "0", y: "0", width: String(width),
                                    height: String(CHART_HEIGHT) });
  chart.append(area, chartAxes(width, durationMs, x));
  for (const event of events) {
    chart.append(svgElement("rect", { class: `event-span ${event.kind}`, x: String(x(event.onset_ms)), y: "0",
                                      width: String(Math.max(1, x(event.offset_ms) - x(event.onset_ms))),
                                      height: String(CHART_HEIGHT) }));
  }
  for (const emotion of EMOTIONS) {
    const points = track.timeline.map(
      (point) => `${x(point.timestamp_ms).toFixed(1)},${y(point.emotions[emotion]).toFixed(1)}`);
    chart.append(svgElement("polyline", { class: "emotion-line", "data-emotion": emotion, points: points.join(" "),
                                          stroke: EMOTION_COLOURS[emotion] }));
  }
  const playhead = svgElement("line", { class: "playhead", x1: "0", x2: "0", y1: "0", y2: String(CHART_HEIGHT) });
  chart.append(playhead);
  chart.addEventListener("click", (click) => {
    const box = area.getBoundingClientRect(); // the plot, without the axes' margins
    seekTo(Math.min(1, Math.max(0, (click.clientX - box.left) / box.width)) * durationMs);
  });
  for (const event of events) {
    const apex = x(event.apex_ms);
    const marker = svgElement("g", { class: `micro-event ${event.kind}`, tabindex: "0", role: "button",
                                     "aria-label": eventText(event), "data-apex-ms": String(event.apex_ms) });
    const title = svgElement("title");
    title.textContent = eventText(event);
    marker.append(title,
                  // A wider, invisible strip makes the thin dashed line easy to hit.
                  svgElement("rect", { class: "hit", x: String(apex - 6), y: "-14", width: "12",
                                       height: String(CHART_HEIGHT + 14) }),
                  svgElement("line", { x1: String(apex), x2: String(apex), y1: "0", y2: String(CHART_HEIGHT) }),
                  svgElement("polygon", { points: `${apex - 7},-13 ${apex + 7},-13 ${apex},-1` }));
    const toApex = (action) => { action.stopPropagation(); seekTo(event.apex_ms); };
    marker.addEventListener("click", toApex);
    marker.addEventListener("keydown", (key) => { if (key.key === "Enter" || key.key === " ") toApex(key); });
    chart.append(marker);
  }
  figure.append(chart);
  return { figure, playhead };
}

// One line a person can read without the API reference: what, whose, when, how long, what changed.
function eventText(event) {
  const kind = event.kind === "micro" ? "Micro-expression (a flash under ½ s)" : "Expression (longer than ½ s)";
  const change = event.emotion ? `${event.emotion} rose to ${percent(event.emotion_probability)}`
    : "no emotion rose";
  const regions = event.regions.length ? ` · moved: ${event.regions.map((region) => region.name).join(", ")}` : "";
  return `${kind} on face #${event.track_id}, strongest at ${seconds(event.apex_ms)} · lasted `
    + `${Math.round(event.duration_ms)} ms from onset to offset (${seconds(event.onset_ms)} to `
    + `${seconds(event.offset_ms)}) · ${change} · movement strength ${percent(event.intensity)}${regions}`;
}

function eventList(events, seekTo) {
  const section = element("div", { class: "event-list" });
  section.append(element("h3", {}, "Micro-expressions and longer expressions"));
  if (!events.length) {
    section.append(element("p", { class: "muted" }, "None spotted in this clip."));
    return section;
  }
  const list = element("ol");
  for (const event of events) {
    const button = element("button", { type: "button", class: "event-button secondary",
                                       "data-apex-ms": String(event.apex_ms) }, eventText(event));
    button.addEventListener("click", () => seekTo(event.apex_ms));
    const item = element("li");
    item.append(button);
    list.append(item);
  }
  section.append(list);
  return section;
}

// ---- webcam: nothing is asked of the browser before the consent click; tracks stop after capture

function stopCamera() {
  stopTracks(camera);
  camera = null;
  $("webcam-video").srcObject = null;
  $("webcam").hidden = true;
}

async function startCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new Error("This browser offers no camera here (it needs https or localhost).");
  }
  try {
    camera = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  } catch (error) {
    stopCamera();
    throw new Error(`The camera could not be turned on: ${error.message}`);
  }
  $("webcam-video").srcObject = camera;
  $("webcam-consent").hidden = true;
  $("webcam-live").hidden = false;
}

async function captureAndAnalyze() {
  const video = $("webcam-video");
  const still = element("canvas");
  still.width = video.videoWidth;
  still.height = video.videoHeight;
  still.getContext("2d").drawImage(video, 0, 0);
  stopCamera();
  const blob = await new Promise((resolve) => still.toBlob(resolve, "image/jpeg", 0.92));
  await analyze(blob, "webcam.jpg");
}

function init() {
  initKey();
  $("demo-form").addEventListener("submit", (submit) => {
    submit.preventDefault();
    const file = $("media").files[0];
    run(async () => {
      if (!file) throw new Error("Choose a photo or a clip first.");
      await analyze(file, file.name);
    });
  });
  $("webcam-open").addEventListener("click", () => {
    $("webcam").hidden = false;
    $("webcam-consent").hidden = false;
    $("webcam-live").hidden = true;
  });
  $("webcam-allow").addEventListener("click", () => run(startCamera));
  $("webcam-cancel").addEventListener("click", stopCamera);
  $("webcam-stop").addEventListener("click", stopCamera);
  $("webcam-capture").addEventListener("click", () => run(captureAndAnalyze));
  window.addEventListener("pagehide", stopCamera);
  window.addEventListener("resize", () => { if (redrawOverlay) redrawOverlay(); });
}

init();

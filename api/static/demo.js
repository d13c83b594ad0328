"use strict";
// The demo page: the visitor's photo, clip or webcam picture goes to POST /v1/analyze with their own
// key, and the JSON answer is drawn over the media. Helpers (element, call, legend…) are common.js's.

const FACE_COLOURS = ["#00c853", "#ff4081", "#2979ff", "#ff9100", "#d500f9", "#00b8d4"];
// sessionStorage, not localStorage: the key is forgotten when the tab closes.
const KEY_STORAGE = "emoscope.demo.key";
const JOB_POLL_MS = 1000;
// The overlay canvas is stretched over the media by CSS; past this many pixels it only costs memory.
const MAX_OVERLAY_SIDE = 1600;
const CHART_WIDTH = 600;
const CHART_HEIGHT = 120;

let mediaUrl = null;     // blob: URL of the media on show, revoked when the next one replaces it
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

async function analyze(blob, name) {
  const key = $("api-key").value.trim();
  if (!key) throw new Error("Paste an API key first; without one, create a free account (the link above the field).");
  sessionStorage.setItem(KEY_STORAGE, key);
  const form = new FormData();
  form.append("file", blob, name);
  if ($("fps").value) form.append("fps", $("fps").value);
  form.append("detector", $("detector").value);
  if ($("mesh").checked) form.append("return_mesh", "true");
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

function prepareOverlay(canvas, media) {
  const scale = Math.min(1, MAX_OVERLAY_SIDE / Math.max(media.width, media.height));
  canvas.width = Math.round(media.width * scale);
  canvas.height = Math.round(media.height * scale);
  const context = canvas.getContext("2d");
  context.setTransform(scale, 0, 0, scale, 0, 0); // draw in the API's source-pixel coordinates
  return { canvas, context, scale, media };
}

function drawFaces(overlay, faces, colourOf, labelOf) {
  const { canvas, context, scale, media } = overlay;
  context.clearRect(0, 0, media.width, media.height);
  // Lines and labels are sized in CSS pixels as shown, whatever the media's resolution.
  const shownWidth = canvas.getBoundingClientRect().width;
  const unit = shownWidth ? media.width / shownWidth : 1 / scale;
  const fontSize = 13 * unit;
  const pad = 3 * unit;
  context.font = `${fontSize}px sans-serif`;
  context.textBaseline = "top";
  context.lineWidth = 2.5 * unit;
  faces.forEach((face, index) => {
    const { x, y, w, h } = face.box;
    const colour = colourOf(face, index);
    context.strokeStyle = colour;
    context.strokeRect(x, y, w, h);
    if (face.mesh) {
      const dot = 1.5 * unit;
      for (const [px, py] of face.mesh) context.fillRect(px - dot / 2, py - dot / 2, dot, dot);
    }
    const label = labelOf(face, index);
    const top = Math.max(0, y - fontSize - 2 * pad);
    context.fillStyle = colour;
    context.fillRect(x, top, context.measureText(label).width + 2 * pad, fontSize + 2 * pad);
    context.fillStyle = "#fff";
    context.fillText(label, x + pad, top + pad);
  });
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
  if (clipListeners) clipListeners.abort();
  clipListeners = null;
  redrawOverlay = null;
  for (const id of ["faces", "timelines", "events"]) $(id).replaceChildren();
  $("image-stage").hidden = true;
  $("video-stage").hidden = true;
  $("clip").removeAttribute("src");
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
  const overlay = prepareOverlay($("photo-overlay"), result.media);
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
  const video = $("clip");
  const listeners = new AbortController();
  clipListeners = listeners;
  video.src = mediaUrl;
  $("video-stage").hidden = false;
  const overlay = prepareOverlay($("clip-overlay"), result.media);
  const frames = [...result.frames].sort((a, b) => a.timestamp_ms - b.timestamp_ms);
  // A frame's boxes stay up until the next analysed frame, and not much longer past the last one.
  const tolerance = 1.5 * result.temporal_resolution_ms;
  const durationMs = result.media.duration_ms || (frames.length ? frames[frames.length - 1].timestamp_ms : 1);
  const playheads = [];
  const draw = (ms) => {
    const frame = frameAt(frames, ms, tolerance);
    drawFaces(overlay, frame ? frame.faces : [], (face) => trackColour(face.track_id),
              (face) => `#${face.track_id} ${face.dominant_emotion}`);
    const x = String(Math.min(1, ms / durationMs) * CHART_WIDTH);
    playheads.forEach((line) => { line.setAttribute("x1", x); line.setAttribute("x2", x); });
  };
  const redraw = () => draw(video.currentTime * 1000);
  redrawOverlay = redraw;
  for (const type of ["loadeddata", "seeked", "timeupdate"]) {
    video.addEventListener(type, redraw, { signal: listeners.signal });
  }
  if ("requestVideoFrameCallback" in video) { // smooth boxes while playing, frame by frame
    const onFrame = (_now, metadata) => {
      if (listeners.signal.aborted) return;
      draw(metadata.mediaTime * 1000);
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  }

  const { tracks, micro_expressions: events } = result;
  $("result-title").textContent = `${tracks.length} face ${tracks.length === 1 ? "track" : "tracks"}`;
  $("result-summary").textContent = `${seconds(durationMs)} clip · ${frames.length} frames analysed at `
    + `${result.sample_fps.toFixed(1)} fps · detector ${result.model.detector} · emotion model ${result.model.emotion}`;
  for (const track of tracks) {
    $("faces").append(faceCard(`Track #${track.track_id} (mean)`, trackColour(track.track_id),
                               track.summary.emotions, track.summary.dominant_emotion));
    const chart = timelineChart(track, durationMs, events.filter((e) => e.track_id === track.track_id), video);
    playheads.push(chart.playhead);
    $("timelines").append(chart.figure);
  }
  $("timelines").prepend(legend());
  $("events").append(eventList(events, video));
}

function timelineChart(track, durationMs, events, video) {
  const x = (ms) => (Math.min(ms, durationMs) / durationMs) * CHART_WIDTH;
  const y = (p) => CHART_HEIGHT - p * CHART_HEIGHT;
  const figure = element("figure", { class: "timeline", "data-track-id": String(track.track_id) });
  figure.append(element("figcaption", {}, `Track #${track.track_id}: ${seconds(track.start_ms)} to `
    + `${seconds(track.end_ms)}, mostly ${track.summary.dominant_emotion}. Click to seek; ▼ marks an event's apex.`));
  const chart = svgElement("svg", { class: "timeline-chart", viewBox: `0 -14 ${CHART_WIDTH} ${CHART_HEIGHT + 14}`,
                                    role: "img", "aria-label": `Emotion probabilities of track ${track.track_id}` });
  chart.append(svgElement("rect", { class: "chart-area", x: "0", y: "0", width: String(CHART_WIDTH),
                                    height: String(CHART_HEIGHT) }));
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
    const box = chart.getBoundingClientRect();
    seek(video, ((click.clientX - box.left) / box.width) * durationMs);
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
    const toApex = (action) => { action.stopPropagation(); seek(video, event.apex_ms); };
    marker.addEventListener("click", toApex);
    marker.addEventListener("keydown", (key) => { if (key.key === "Enter" || key.key === " ") toApex(key); });
    chart.append(marker);
  }
  figure.append(chart);
  return { figure, playhead };
}

function eventText(event) {
  const emotion = event.emotion ? `${event.emotion} ${percent(event.emotion_probability)}` : "no emotion change";
  return `Track #${event.track_id} · ${event.kind}-expression · ${emotion} · apex at ${seconds(event.apex_ms)}`
    + ` · lasted ${Math.round(event.duration_ms)} ms from onset to offset · intensity ${percent(event.intensity)}`;
}

function eventList(events, video) {
  const section = element("div", { class: "event-list" });
  section.append(element("h3", {}, "Micro- and macro-expressions"));
  if (!events.length) {
    section.append(element("p", { class: "muted" }, "None spotted in this clip."));
    return section;
  }
  const list = element("ol");
  for (const event of events) {
    const button = element("button", { type: "button", class: "event-button secondary",
                                       "data-apex-ms": String(event.apex_ms) }, eventText(event));
    button.addEventListener("click", () => seek(video, event.apex_ms));
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

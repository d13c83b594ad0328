"use strict";
// The participant page. Nothing touches the camera before the consent click. Then the webcam records
// (video only) while the stimulus plays, every camera track stops when playback ends, on cancel and
// when the page goes away, and the recording goes to POST /v1/studies/{id}/sessions with the
// participant token from this page's address. The receipt in the answer withdraws the session.
// Between the camera starting and the recording, a face check: a few stills of the preview go to
// POST /v1/studies/{id}/face-check (judged and dropped by the server); the viewer may start anyway.

const STUDY = $("study").dataset;
const TOKEN = decodeURIComponent(location.pathname.split("/").pop());
const STUDY_PATH = `/v1/studies/${encodeURIComponent(STUDY.studyId)}`;
const DURATION_MS = Number(STUDY.durationMs);
// VP8 first: the cheapest to encode on a slow machine, and the server decodes any WebM.
const RECORDER_TYPES = ["video/webm;codecs=vp8", "video/webm;codecs=vp9", "video/webm"];
// Plenty for a face at webcam resolution; keeps a minute's recording a few MB.
const RECORDER_BITS_PER_SECOND = 1_000_000;
const SECTIONS = ["check", "viewing", "upload", "done", "withdrawn"];
// Three stills a third of a second apart: one blink or turn of the head does not decide the check.
const CHECK_STILLS = 3;
const CHECK_GAP_MS = 300;
const CHECK_WIDTH = 640; // as the server judges the face's size against the picture's width

let camera = null;    // the MediaStream, only between consent and the end of playback
let recorder = null;
let viewing = null;   // AbortController of the current viewing: cancel and pagehide abort it
let stimulusUrl = null;
let recording = null; // { blob, stimulusStartedMs, consent, idempotencyKey } until it is received or discarded
let receipt = null;

function showSection(id) {
  for (const section of SECTIONS) $(section).hidden = section !== id;
}

function stopCamera() {
  if (recorder && recorder.state !== "inactive") recorder.stop();
  recorder = null;
  stopTracks(camera);
  camera = null;
  $("camera").srcObject = null;
  $("check-camera").srcObject = null;
  $("stimulus").pause();
}

async function loadStimulus() {
  setStatus("Loading the video…");
  const response = await fetch(`${STUDY_PATH}/stimulus`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    throw new Error(problemText(response.status, body, response.headers.get("Retry-After")));
  }
  // A blob: URL, because a <video src> request could not carry the token in a header.
  stimulusUrl = URL.createObjectURL(await response.blob());
  const video = $("stimulus");
  const ready = new Promise((resolve, reject) => {
    video.addEventListener("canplaythrough", resolve, { once: true });
    video.addEventListener("error", () => reject(new Error("This browser cannot play the study's video.")),
                           { once: true });
  });
  video.src = stimulusUrl;
  await ready;
}

// Resolves when playback ends, with the time it began (performance.now()); rejects when aborted.
function playStimulus(signal) {
  return new Promise((resolve, reject) => {
    let startedAt = null;
    let timer = null;
    const finish = () => { clearInterval(timer); resolve(startedAt); };
    if (signal.aborted) { // stopped while the camera and the recorder were starting
      reject(signal.reason);
      return;
    }
    signal.addEventListener("abort", () => {
      clearInterval(timer);
      reject(signal.reason);
    }, { once: true });
    if (STUDY.hasStimulus === "true") {
      const video = $("stimulus");
      video.hidden = false;
      video.addEventListener("playing", () => { startedAt ??= performance.now(); }, { signal }); // not after a stall
      video.addEventListener("ended", finish, { once: true, signal });
      video.play().catch(reject);
      return;
    }
    // No stored stimulus (the owner shows it some other way): a countdown of its duration.
    $("placeholder").hidden = false;
    startedAt = performance.now();
    const tick = () => {
      const left = DURATION_MS - (performance.now() - startedAt);
      $("countdown").textContent = `${Math.max(0, Math.ceil(left / 1000))} s`;
      if (left <= 0) finish();
    };
    tick();
    timer = setInterval(tick, 100);
  });
}

async function previewStills(video) {
  if (!video.videoWidth) await new Promise((resolve) => video.addEventListener("loadeddata", resolve, { once: true }));
  const scale = Math.min(1, CHECK_WIDTH / video.videoWidth);
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(video.videoWidth * scale);
  canvas.height = Math.round(video.videoHeight * scale);
  const stills = [];
  for (let n = 0; n < CHECK_STILLS; n++) {
    if (n) await new Promise((resolve) => setTimeout(resolve, CHECK_GAP_MS));
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    stills.push(await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.8)));
  }
  return stills;
}

async function checkFace() {
  $("check-hints").replaceChildren();
  $("check-again").disabled = true;
  $("check-state").textContent = "Checking the camera…";
  try {
    const form = new FormData();
    (await previewStills($("check-camera"))).forEach((still, i) => form.append(`still_${i + 1}`, still, `still${i + 1}.jpg`));
    const response = await fetch(`${STUDY_PATH}/face-check`,
                                 { method: "POST", headers: { Authorization: `Bearer ${TOKEN}` }, body: form });
    const body = await response.json().catch(() => null);
    if (!response.ok) throw new Error(problemText(response.status, body, response.headers.get("Retry-After")));
    $("check-state").textContent = body.ok ? "Your face is clearly visible: you can start."
                                           : "The camera does not see you well yet:";
    for (const { hint } of body.hints) {
      const item = document.createElement("li");
      item.textContent = hint;
      $("check-hints").append(item);
    }
    $("check-start").textContent = body.ok ? "Start" : "Continue anyway";
  } catch (error) {
    $("check-state").textContent = `The check could not run (${error.message}). You can still continue.`;
    $("check-start").textContent = "Continue anyway";
  } finally {
    $("check-again").disabled = false;
  }
}

function faceChecked(signal) {
  $("check-camera").srcObject = camera;
  showSection("check");
  checkFace();
  return new Promise((resolve, reject) => {
    $("check-start").addEventListener("click", resolve, { once: true, signal });
    signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}

function recorderOptions() {
  const mimeType = RECORDER_TYPES.find((type) => MediaRecorder.isTypeSupported(type)); // none: the browser's own
  return { ...(mimeType ? { mimeType } : {}), videoBitsPerSecond: RECORDER_BITS_PER_SECOND };
}

async function participate() {
  const consent = { version: STUDY.consentVersion, accepted_at: new Date().toISOString() };
  $("consent").hidden = true;
  $("error").hidden = true;
  viewing = new AbortController();
  try {
    if (STUDY.hasStimulus === "true" && !stimulusUrl) await loadStimulus();
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.MediaRecorder) {
      throw new Error("This browser cannot record the webcam here.");
    }
    setStatus("Starting the camera…");
    camera = await navigator.mediaDevices.getUserMedia({ video: true, audio: false }).catch((error) => {
      throw new Error(`The camera could not be switched on: ${error.message}`);
    });
    setStatus("");
    await faceChecked(viewing.signal);
    $("camera").srcObject = camera;
    showSection("viewing");
    const chunks = [];
    recorder = new MediaRecorder(camera, recorderOptions());
    recorder.addEventListener("dataavailable", (event) => { if (event.data.size) chunks.push(event.data); });
    const started = new Promise((resolve) => recorder.addEventListener("start", resolve, { once: true }));
    const stopped = new Promise((resolve) => recorder.addEventListener("stop", resolve, { once: true }));
    recorder.start();
    await started;
    const recordingStart = performance.now(); // the recording's clock starts about here
    const playbackStart = await playStimulus(viewing.signal);
    stopCamera();
    await stopped;
    recording = { blob: new Blob(chunks, { type: chunks.length ? chunks[0].type : "video/webm" }),
                  stimulusStartedMs: Math.max(0, playbackStart - recordingStart), consent,
                  idempotencyKey: crypto.randomUUID() };
    await send();
  } catch (error) {
    stopCamera();
    showSection(null);
    $("consent").hidden = false;
    $("stimulus").hidden = true;
    $("placeholder").hidden = true;
    if (error.name === "AbortError") setStatus("Stopped: the recording was discarded and nothing was sent.");
    else showError(error.message);
  }
}

function upload() {
  const { blob, stimulusStartedMs, consent, idempotencyKey } = recording;
  const form = new FormData();
  form.append("file", blob, blob.type.includes("mp4") ? "recording.mp4" : "recording.webm");
  form.append("stimulus_started_ms", stimulusStartedMs.toFixed(1));
  form.append("consent", JSON.stringify(consent));
  // The link's variables the study keeps (the server read them from this page's address and listed them above).
  const variables = JSON.parse(STUDY.variables || "{}");
  if (Object.keys(variables).length) form.append("variables", JSON.stringify(variables));
  return new Promise((resolve, reject) => {
    // XMLHttpRequest, not fetch: it reports upload progress.
    const request = new XMLHttpRequest();
    request.open("POST", `${STUDY_PATH}/sessions`);
    request.setRequestHeader("Authorization", `Bearer ${TOKEN}`);
    // The same key on a retry: a recording that did arrive is not counted twice, and its receipt comes back.
    request.setRequestHeader("Idempotency-Key", idempotencyKey);
    request.responseType = "json";
    request.upload.addEventListener("progress", (progress) => {
      if (!progress.lengthComputable) return;
      $("upload-progress").value = progress.loaded / progress.total;
      $("upload-state").textContent = `${percent(progress.loaded / progress.total)} of `
        + `${(progress.total / 1e6).toFixed(1)} MB`;
    });
    request.addEventListener("load", () => {
      if (request.status === 202) resolve(request.response);
      else reject(new Error(problemText(request.status, request.response, request.getResponseHeader("Retry-After"))));
    });
    request.addEventListener("error", () => reject(new Error("The connection failed.")));
    request.send(form);
  });
}

async function send() {
  showSection("upload");
  $("retry").hidden = true;
  $("discard").hidden = true;
  $("error").hidden = true;
  $("upload-progress").value = 0;
  try {
    const answer = await upload();
    recording = null;
    receipt = answer.receipt;
    $("receipt").value = receipt;
    showSection("done");
  } catch (error) {
    showError(`The recording was not sent: ${error.message}`);
    $("retry").hidden = false;
    $("discard").hidden = false;
  }
}

async function withdraw() {
  if (!window.confirm("Delete your session and everything kept about it?")) return;
  $("withdraw").disabled = true;
  try {
    await call(`${STUDY_PATH}/sessions/${encodeURIComponent(receipt)}`, null, { method: "DELETE" });
    receipt = null;
    $("receipt").value = "";
    showSection("withdrawn");
  } catch (error) {
    showError(`Not deleted: ${error.message}`);
  } finally {
    $("withdraw").disabled = false;
  }
}

function init() {
  $("consent-accept").addEventListener("click", participate);
  $("consent-refuse").addEventListener("click", () => {
    $("consent").hidden = true;
    $("refused").hidden = false;
  });
  $("cancel").addEventListener("click", () => viewing.abort());
  $("check-cancel").addEventListener("click", () => viewing.abort());
  $("check-again").addEventListener("click", checkFace);
  $("retry").addEventListener("click", send);
  $("discard").addEventListener("click", () => {
    recording = null;
    showSection(null);
    $("error").hidden = true;
    setStatus("The recording was discarded; nothing was sent.");
  });
  $("withdraw").addEventListener("click", withdraw);
  $("receipt-download").addEventListener("click", () => {
    const text = `Receipt for the study "${document.querySelector("h1").textContent}": ${receipt}\n`
      + `Withdraw at ${location.origin}${location.pathname}/withdraw\n`;
    download(new Blob([text], { type: "text/plain" }), "emoscope-receipt.txt");
  });
  enableCopyButtons();
  // The page's address holds the token, which the markup never repeats: the link is made here.
  document.querySelectorAll("a.withdraw-link").forEach((link) => { link.href = `${location.pathname}/withdraw`; });
  // Leaving (or reloading) mid-viewing ends it: the camera goes off and the recording is dropped.
  window.addEventListener("pagehide", () => { if (viewing) viewing.abort(); stopCamera(); });
}

init();

"use strict";
// Shared by the page scripts (demo, participant, study report), loaded before them: classic scripts
// share one global scope, so these are plain top-level names. Pages build DOM with these calls,
// never innerHTML, so nothing in an answer can turn into markup.

const EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];
const EMOTION_COLOURS = {
  angry: "#d62728", disgust: "#8c564b", fear: "#9467bd", happy: "#e6a800",
  sad: "#1f77b4", surprise: "#17becf", neutral: "#7f7f7f",
};
const SVG_NS = "http://www.w3.org/2000/svg";

const $ = (id) => document.getElementById(id);

function element(tag, attributes = {}, text = null) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== null) node.textContent = text;
  return node;
}

function svgElement(tag, attributes = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

const percent = (p) => `${Math.round(p * 100)}%`;
const seconds = (ms) => `${(ms / 1000).toFixed(2)} s`;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Every page has a #status line and an #error alert.
function setStatus(text) { $("status").textContent = text; }

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = false;
  setStatus("");
}

// A problem+json answer (or none) as one line for a person.
function problemText(status, body, retryAfter) {
  const text = body && body.detail ? `${body.title}: ${body.detail}` : `HTTP ${status}`;
  return retryAfter ? `${text} (retry after ${retryAfter} s)` : text;
}

// A JSON endpoint called with a bearer credential (an API key, a study's participant token) or none.
async function call(path, key, init = {}) {
  const response = await fetch(path, { ...init, headers: key ? { Authorization: `Bearer ${key}` } : {} });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new Error(problemText(response.status, body, response.headers.get("Retry-After")));
  return { status: response.status, body };
}

function legend() {
  const list = element("ul", { class: "legend" });
  for (const emotion of EMOTIONS) {
    const item = element("li", { "data-emotion": emotion });
    const swatch = element("span", { class: "swatch", "aria-hidden": "true" });
    swatch.style.backgroundColor = EMOTION_COLOURS[emotion]; // CSSOM, which a strict style-src allows
    item.append(swatch, emotion);
    list.append(item);
  }
  return list;
}

function seek(video, ms) {
  video.pause();
  video.currentTime = ms / 1000;
}

function stopTracks(stream) {
  if (stream) stream.getTracks().forEach((track) => track.stop());
}

// Buttons with data-copy="<field id>" copy that field's value (a key, a link, a receipt).
function enableCopyButtons() {
  document.querySelectorAll("button[data-copy]").forEach((button) => {
    button.addEventListener("click", async () => {
      const field = document.getElementById(button.dataset.copy);
      field.select();
      try {
        await navigator.clipboard.writeText(field.value);
        button.textContent = "Copied";
      } catch {
        button.textContent = "Press Ctrl+C"; // no clipboard permission: the text is selected for the keyboard
      }
    });
  });
}

// Saves `blob` as a file named `name` (a chart, a receipt).
function download(blob, name) {
  const link = element("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000); // the download has long started
}

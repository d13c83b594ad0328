"use strict";
// Conveniences only: every console form works without this script.

enableCopyButtons();

document.querySelectorAll("form[data-confirm]").forEach((form) => {
  form.addEventListener("submit", (submit) => {
    if (!window.confirm(form.dataset.confirm)) submit.preventDefault();
  });
});

// The study form: a chosen stimulus video fills in its duration.
const stimulusFile = document.getElementById("stimulus-file");
if (stimulusFile) {
  stimulusFile.addEventListener("change", () => {
    const [file] = stimulusFile.files;
    if (!file) return;
    const probe = document.createElement("video");
    probe.preload = "metadata";
    probe.addEventListener("loadedmetadata", () => {
      if (Number.isFinite(probe.duration)) document.getElementById("duration-s").value = probe.duration.toFixed(1);
      URL.revokeObjectURL(probe.src);
    }, { once: true });
    probe.src = URL.createObjectURL(file);
  });
}

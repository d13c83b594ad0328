"use strict";
// The withdrawal page (/s/<token>/withdraw): a pasted receipt deletes its session through
// DELETE /v1/studies/{id}/sessions/{receipt}, the same call the participant page makes.

async function withdraw(submit) {
  submit.preventDefault();
  const receipt = $("receipt").value.trim();
  if (!receipt) return;
  $("error").hidden = true;
  $("withdraw").disabled = true;
  try {
    const study = encodeURIComponent($("study").dataset.studyId);
    await call(`/v1/studies/${study}/sessions/${encodeURIComponent(receipt)}`, null, { method: "DELETE" });
    $("study").hidden = true;
    $("withdrawn").hidden = false;
  } catch (error) {
    showError(`Not deleted: ${error.message}`);
  } finally {
    $("withdraw").disabled = false;
  }
}

$("withdraw-form").addEventListener("submit", withdraw);

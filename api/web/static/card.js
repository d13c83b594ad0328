"use strict";
// The paid plan's card form: Stripe.js collects and saves the card (a SetupIntent made by the
// server), then the form posts only the resulting payment method's id.

const form = document.getElementById("card-form");
const stripe = Stripe(form.dataset.publishableKey);
const card = stripe.elements().create("card");
card.mount("#card-element");

const submit = document.getElementById("card-submit");
const error = document.getElementById("card-error");

form.addEventListener("submit", async (event) => {
  if (document.getElementById("payment-method").value) return; // saved: let the form go
  event.preventDefault();
  submit.disabled = true;
  error.hidden = true;
  const result = await stripe.confirmCardSetup(form.dataset.clientSecret, { payment_method: { card } });
  if (result.error) {
    error.textContent = result.error.message || "The card could not be saved.";
    error.hidden = false;
    submit.disabled = false;
    return;
  }
  document.getElementById("payment-method").value = result.setupIntent.payment_method;
  form.submit();
});

// Cessio review desk: keyboard moves through the queue and the live remaining amount of a manual split.
// Amounts are handled as integer minor units parsed from the typed text (never as binary floats).
"use strict";

function toMinor(text, exponent) {
  // "1 234,50", "1,234.50", "1234.5" -> integer minor units, or null when it is not an amount
  let s = (text || "").replace(/[\s\u00a0\u202f]/g, "");
  if (!s) return 0;
  if (s.includes(",") && s.includes(".")) {
    s = s.lastIndexOf(".") > s.lastIndexOf(",") ? s.replace(/,/g, "") : s.replace(/\./g, "").replace(",", ".");
  } else { s = s.replace(",", "."); }
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(s);
  if (!m) return null;
  const frac = (m[3] || "");
  if (frac.length > exponent) return null;
  const minor = parseInt(m[2] + frac.padEnd(exponent, "0"), 10);
  return m[1] ? -minor : minor;
}

function fromMinor(minor, exponent, lang) {
  const sign = minor < 0 ? "-" : "";
  const digits = String(Math.abs(minor)).padStart(exponent + 1, "0");
  const whole = digits.slice(0, digits.length - exponent) || "0";
  const frac = exponent ? digits.slice(digits.length - exponent) : "";
  const group = lang === "fr" ? "\u202f" : ",";
  const point = lang === "fr" ? "," : ".";
  return sign + whole.replace(/\B(?=(\d{3})+(?!\d))/g, group) + (frac ? point + frac : "");
}

function updateRemaining(form) {
  const line = form.closest(".line");
  const exponent = parseInt(line.dataset.exponent, 10);
  let rest = parseInt(line.dataset.amountMinor, 10) - parseInt(line.dataset.allocatedMinor, 10);
  let valid = true;
  form.querySelectorAll("input[name=amount]").forEach((input) => {
    const minor = toMinor(input.value, exponent);
    input.setCustomValidity(minor === null ? "amount" : "");
    if (minor === null) valid = false; else rest -= minor;
  });
  const out = form.querySelector("output.remaining");
  out.textContent = valid ? fromMinor(rest, exponent, document.documentElement.lang) : "?";
  out.classList.toggle("nonzero", rest !== 0);
  out.classList.toggle("over", rest < 0);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form.alloc").forEach((form) => {
    form.addEventListener("input", () => updateRemaining(form));
    form.querySelector("button.addrow").addEventListener("click", () => {
      const body = form.querySelector("tbody");
      const row = body.rows[body.rows.length - 1].cloneNode(true);
      row.querySelectorAll("input").forEach((i) => { i.value = ""; });
      body.appendChild(row);
      row.querySelector("input").focus();
    });
  });
  const lines = Array.from(document.querySelectorAll("article.line"));
  if (lines.length) lines[0].classList.add("current");
  document.addEventListener("keydown", (event) => {
    const tag = (event.target.tagName || "").toLowerCase();
    if (["input", "select", "textarea"].includes(tag) || event.ctrlKey || event.metaKey || event.altKey) return;
    const current = document.querySelector("article.line.current") || lines[0];
    if (!current) return;
    let index = lines.indexOf(current);
    if (event.key === "j" || event.key === "k") {
      index = Math.max(0, Math.min(lines.length - 1, index + (event.key === "j" ? 1 : -1)));
      current.classList.remove("current");
      lines[index].classList.add("current");
      lines[index].focus();
      event.preventDefault();
    } else if (event.key === "a" || event.key === "r") {
      const button = current.querySelector(`button[data-key=${event.key}]`);
      if (button) { button.click(); event.preventDefault(); }
    } else if (event.key === "s") {
      const details = current.querySelector("details.split");
      if (details) { details.open = true; details.querySelector("input[name=invoice_number]").focus(); event.preventDefault(); }
    }
  });
});

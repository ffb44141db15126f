// The drawing pad: pointer events draw with a thick round pen; after each stroke the canvas
// goes to POST /predict, and the answer fills #prediction and the ten bars.
"use strict";

const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const prediction = document.getElementById("prediction");
const statusLine = document.getElementById("status");
const bars = document.getElementById("bars");
const PEN = pad.width / 14; // MNIST's strokes are about 2 px of 28

const fills = [];
const values = [];
for (let d = 0; d < 10; d++) {
  const li = document.createElement("li");
  li.id = "bar-" + d;
  li.innerHTML = '<span class="digit">' + d + '</span><span class="track">' +
    '<span class="fill"></span></span><span class="value"></span>';
  bars.appendChild(li);
  fills.push(li.querySelector(".fill"));
  values.push(li.querySelector(".value"));
}

let drawing = null; // the pointerId of the stroke in progress
let last = null;
let strokes = 0; // strokes since the page loaded
let generation = 0; // bumped by Clear, so that late answers are dropped
let latestShown = 0;

function point(event) {
  const r = pad.getBoundingClientRect();
  return {
    x: (event.clientX - r.left - pad.clientLeft) * pad.width / pad.clientWidth,
    y: (event.clientY - r.top - pad.clientTop) * pad.height / pad.clientHeight,
  };
}

function dot(p) {
  ctx.beginPath();
  ctx.arc(p.x, p.y, PEN / 2, 0, 2 * Math.PI);
  ctx.fill();
}

function segment(a, b) {
  ctx.beginPath();
  ctx.moveTo(a.x, a.y);
  ctx.lineTo(b.x, b.y);
  ctx.stroke();
}

pad.addEventListener("pointerdown", (event) => {
  if (drawing !== null) return;
  event.preventDefault();
  drawing = event.pointerId;
  pad.setPointerCapture(event.pointerId);
  last = point(event);
  dot(last);
});

pad.addEventListener("pointermove", (event) => {
  if (event.pointerId !== drawing) return;
  event.preventDefault();
  const moves = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
  for (const e of moves.length ? moves : [event]) {
    const p = point(e);
    segment(last, p);
    last = p;
  }
});

function endStroke(event) {
  if (event.pointerId !== drawing) return;
  drawing = null;
  if (pad.hasPointerCapture(event.pointerId)) pad.releasePointerCapture(event.pointerId);
  strokes += 1;
  prediction.dataset.strokes = String(strokes);
  predict(strokes);
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

function canvasInk() {
  // ink = alpha: the pen is opaque on a transparent canvas; two decimals keep the JSON small
  const rgba = ctx.getImageData(0, 0, pad.width, pad.height).data;
  const ink = new Array(pad.width * pad.height);
  for (let i = 0; i < ink.length; i++) ink[i] = Math.round(rgba[4 * i + 3] / 2.55) / 100;
  return ink;
}

function show(probabilities) {
  let best = -1;
  if (probabilities) best = probabilities.indexOf(Math.max(...probabilities));
  for (let d = 0; d < 10; d++) {
    const p = probabilities ? probabilities[d] : 0;
    fills[d].style.width = (100 * p).toFixed(1) + "%";
    values[d].textContent = probabilities ? (100 * p).toFixed(1) + "%" : "";
    bars.children[d].classList.toggle("best", d === best);
  }
}

async function predict(stroke) {
  const mine = generation;
  const body = JSON.stringify({ canvas: canvasInk(), width: pad.width, height: pad.height });
  try {
    const response = await fetch("/predict", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body,
    });
    const answer = await response.json();
    if (mine !== generation || stroke < latestShown) return; // cleared, or overtaken
    latestShown = stroke;
    if (!response.ok) throw new Error(answer.error || response.statusText);
    prediction.textContent = String(answer.digit);
    show(answer.probabilities);
    statusLine.textContent = "";
  } catch (error) {
    if (mine === generation) statusLine.textContent = "error: " + error.message;
  } finally {
    if (mine === generation) prediction.dataset.answered = String(Math.max(
      Number(prediction.dataset.answered), stroke));
  }
}

document.getElementById("clear").addEventListener("click", () => {
  generation += 1;
  ctx.clearRect(0, 0, pad.width, pad.height);
  prediction.textContent = "";
  prediction.dataset.answered = String(strokes);
  statusLine.textContent = "";
  show(null);
});

ctx.lineWidth = PEN;
ctx.lineCap = "round";
ctx.lineJoin = "round";
ctx.strokeStyle = "#111";
ctx.fillStyle = "#111";
show(null);

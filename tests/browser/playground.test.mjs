// Real-browser test of the flowplay web build, in headless Chromium (Debian's /usr/bin/chromium).
//
//   node tests/browser/playground.test.mjs http://127.0.0.1:PORT/ [--only=webgpu|webgl|phone]
//
// Normally started by tests/browser/run.sh, which builds and serves dist/.
// Environment: FLOWPLAY_CHROMIUM (browser binary, default /usr/bin/chromium),
//              FLOWPLAY_TIMEOUT_SCALE (multiplies every timeout, default 1).
//
// The app's test contract: a hidden <pre id="flowplay-status"> whose textContent is a JSON object
// rewritten every frame:
//   {"backend": "gpu"|"cpu", "adapter": string, "training": bool, "step": int, "loss": number|null,
//    "steps_per_sec": number, "fps": number, "frames": int, "particles": int, "particles_drawn": int,
//    "solver": "euler"|"heun"|"rk4", "path": "rectified-flow"|"vp-cosine"|"ve",
//    "flow_version": int, "refresh_secs": number|null, "eval_secs": number|null, "notice": string|null,
//    "layers": [string] (the canvas layers drawn in the last frame)}
// and the app is driven through location.hash (train=1|0, solver=, path=, particles=, steps=, seed=,
// layers=field,density,…),
// applied live on `hashchange`. Particles are drawn orange, about rgb(255, 140, 30).
//
// Two runs: (a) with WebGPU (SwiftShader), expecting backend "gpu"; (b) without WebGPU (eframe falls
// back to WebGL2), expecting backend "cpu". Artifacts: tests/browser/artifacts/{webgpu,webgl}-*.png
// and figures.json. Exit code 1 on any failure.

import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import zlib from 'node:zlib';

const HERE = dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = join(HERE, 'artifacts');
const CHROMIUM = process.env.FLOWPLAY_CHROMIUM || '/usr/bin/chromium';
const SCALE = Number(process.env.FLOWPLAY_TIMEOUT_SCALE || '1');
const ms = (n) => Math.max(1, Math.round(n * SCALE));

// Flags that work on this machine (docs/toolchain.md, "The real-browser test").
const BASE_FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];
const WEBGPU_FLAGS = [
  ...BASE_FLAGS,
  '--enable-unsafe-webgpu',
  // Without these a screenshot of a WebGPU canvas is blank.
  '--enable-features=Vulkan',
  '--use-vulkan=swiftshader',
  '--use-angle=swiftshader',
];

// The issue's budget for the wasm bundle as served, gzipped.
const BUNDLE_GZIP_MAX_BYTES = 3_000_000;
const ORANGE_MIN_PIXELS = 200;
const ORANGE_MIN_CELL_ROWS = 3; // orange must span >= 3 rows of 16 px cells (a 2-D cloud, not a text line)
const CELL = 16;

// ------------------------------------------------------------------------------------ helpers

class TestFailure extends Error {}
function check(cond, message) {
  if (!cond) throw new TestFailure(message);
}
const sleep = (t) => new Promise((r) => setTimeout(r, t));
const t0 = Date.now();
function log(...a) {
  console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s]`, ...a);
}
const short = (s) => (s == null ? String(s) : JSON.stringify(s).slice(0, 600));

/** Reads the status element; returns {status} or {problem} (missing element / not JSON). */
async function readStatus(page) {
  let r;
  try {
    r = await page.evaluate(() => {
      const el = document.getElementById('flowplay-status');
      return { found: !!el, text: el ? el.textContent : null, title: document.title };
    });
  } catch (e) {
    // e.g. "Execution context was destroyed" during a navigation: report and let the caller retry.
    return { problem: `page.evaluate failed: ${e.message.split('\n')[0]}` };
  }
  if (!r.found) {
    return { problem: `element #flowplay-status is missing (document.title: ${JSON.stringify(r.title)})` };
  }
  try {
    const status = JSON.parse(r.text);
    if (status === null || typeof status !== 'object' || Array.isArray(status)) {
      return { problem: `#flowplay-status is JSON but not an object: ${short(r.text)}` };
    }
    return { status, title: r.title };
  } catch {
    return { problem: `#flowplay-status textContent is not JSON: ${short(r.text)}` };
  }
}

/**
 * Polls the status JSON until predicate(status) is true; returns that status.
 * Throws a TestFailure naming `what`, the timeout and the last thing seen when it times out.
 */
async function waitForStatus(page, predicate, timeoutMs, what, { pollMs = 200 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = { problem: 'nothing read yet' };
  for (;;) {
    last = await readStatus(page);
    if (last.status && predicate(last.status)) return last.status;
    if (Date.now() >= deadline) break;
    await sleep(pollMs);
  }
  const seen = last.status ? `last status: ${short(last.status)}` : last.problem;
  throw new TestFailure(`timed out after ${(timeoutMs / 1000).toFixed(0)} s waiting for ${what}; ${seen}`);
}

/** The latest status, or a TestFailure if it cannot be read. */
async function currentStatus(page) {
  const r = await readStatus(page);
  if (!r.status) throw new TestFailure(r.problem);
  return r.status;
}

/** Checks the status object against the contract's schema; returns a list of problems. */
function schemaProblems(s) {
  const p = [];
  const isInt = (v) => Number.isInteger(v);
  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
  const want = {
    backend: (v) => v === 'gpu' || v === 'cpu',
    adapter: (v) => typeof v === 'string',
    training: (v) => typeof v === 'boolean',
    step: isInt,
    loss: (v) => v === null || isNum(v),
    steps_per_sec: isNum,
    fps: isNum,
    frames: isInt,
    particles: isInt,
    particles_drawn: isInt,
    solver: (v) => ['euler', 'heun', 'rk4'].includes(v),
    path: (v) => ['rectified-flow', 'vp-cosine', 've'].includes(v),
    flow_version: isInt,
    refresh_secs: (v) => v === null || isNum(v),
    eval_secs: (v) => v === null || isNum(v),
    notice: (v) => v === null || typeof v === 'string',
    layers: (v) => Array.isArray(v) && v.every((l) => typeof l === 'string'),
    data: (v) => typeof v === 'string',
    data_points: isInt,
    canvas_rect: (v) => v === null || (Array.isArray(v) && v.length === 4 && v.every(isNum)),
    lesson: (v) => v === null || isInt(v),
    lab_measured: isInt,
    second: (v) => v === null || (typeof v === 'object' && typeof v.runs === 'string'),
  };
  for (const [k, ok] of Object.entries(want)) {
    if (!(k in s)) p.push(`missing key "${k}"`);
    else if (!ok(s[k])) p.push(`bad value for "${k}": ${JSON.stringify(s[k])}`);
  }
  return p;
}

/** Sets location.hash (the app applies it live on hashchange). */
async function setHash(page, hash) {
  log(`set location.hash = '${hash}'`);
  await page.evaluate((h) => {
    // Make sure a hashchange fires even if the app had already written exactly this hash.
    if (location.hash === '#' + h) location.hash = '';
    location.hash = h;
  }, hash);
}

// ------------------------------------------------------------------------- PNG + pixel checks

/** Minimal PNG decoder (8-bit greyscale/RGB/RGBA, non-interlaced: what Chromium screenshots are). */
function decodePng(buf) {
  const sig = [137, 80, 78, 71, 13, 10, 26, 10];
  for (let i = 0; i < 8; i++) if (buf[i] !== sig[i]) throw new Error('not a PNG');
  let off = 8;
  let width, height, depth, ctype, interlace;
  const idat = [];
  while (off < buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('latin1', off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      depth = data[8];
      ctype = data[9];
      interlace = data[12];
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    off += 12 + len;
  }
  const channels = { 0: 1, 2: 3, 4: 2, 6: 4 }[ctype];
  if (depth !== 8 || interlace !== 0 || !channels) {
    throw new Error(`unsupported PNG (depth ${depth}, colour type ${ctype}, interlace ${interlace})`);
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const rgba = Buffer.alloc(width * height * 4);
  let prev = Buffer.alloc(stride);
  let cur = Buffer.alloc(stride);
  for (let y = 0; y < height; y++) {
    const base = y * (stride + 1);
    const filter = raw[base];
    for (let i = 0; i < stride; i++) {
      const x = raw[base + 1 + i];
      const a = i >= channels ? cur[i - channels] : 0;
      const b = prev[i];
      const c = i >= channels ? prev[i - channels] : 0;
      let v;
      switch (filter) {
        case 0: v = x; break;
        case 1: v = x + a; break;
        case 2: v = x + b; break;
        case 3: v = x + ((a + b) >> 1); break;
        case 4: {
          const p = a + b - c;
          const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
          v = x + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
          break;
        }
        default: throw new Error(`bad PNG filter ${filter} on row ${y}`);
      }
      cur[i] = v & 255;
    }
    for (let px = 0; px < width; px++) {
      const o = (y * width + px) * 4;
      const s = px * channels;
      if (channels >= 3) {
        rgba[o] = cur[s]; rgba[o + 1] = cur[s + 1]; rgba[o + 2] = cur[s + 2];
        rgba[o + 3] = channels === 4 ? cur[s + 3] : 255;
      } else {
        rgba[o] = rgba[o + 1] = rgba[o + 2] = cur[s];
        rgba[o + 3] = channels === 2 ? cur[s + 1] : 255;
      }
    }
    [prev, cur] = [cur, prev];
  }
  return { width, height, rgba };
}

/** Orange-pixel count and spread, and "is it blank" statistics of a screenshot. */
function analyseScreenshot(png) {
  const { width, height, rgba } = decodePng(png);
  const counts = new Map();
  let orange = 0;
  let minX = Infinity, minY = Infinity, maxX = -1, maxY = -1;
  const cells = new Set();
  const cellRows = new Set();
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 4;
      const r = rgba[o], g = rgba[o + 1], b = rgba[o + 2];
      const key = (r << 16) | (g << 8) | b;
      counts.set(key, (counts.get(key) || 0) + 1);
      if (r > 200 && g > 90 && g < 190 && b < 90) {
        orange++;
        if (x < minX) minX = x;
        if (x > maxX) maxX = x;
        if (y < minY) minY = y;
        if (y > maxY) maxY = y;
        cells.add(((y / CELL) | 0) * 10000 + ((x / CELL) | 0));
        cellRows.add((y / CELL) | 0);
      }
    }
  }
  let dominant = 0, dominantKey = 0;
  for (const [k, n] of counts) if (n > dominant) { dominant = n; dominantKey = k; }
  const total = width * height;
  return {
    width,
    height,
    orange_pixels: orange,
    orange_cells: cells.size,
    orange_cell_rows: cellRows.size,
    orange_bbox: orange ? [minX, minY, maxX, maxY] : null,
    distinct_colours: counts.size,
    dominant_colour: `rgb(${dominantKey >> 16}, ${(dominantKey >> 8) & 255}, ${dominantKey & 255})`,
    non_dominant_fraction: Number(((total - dominant) / total).toFixed(4)),
  };
}

/** Takes a screenshot into artifacts/, checks that it is not blank; returns its analysis. */
async function screenshot(page, name) {
  const file = join(ARTIFACTS, `${name}.png`);
  const png = await page.screenshot({ path: file, timeout: ms(60_000) });
  const a = analyseScreenshot(png);
  log(`screenshot ${name}.png: ${a.orange_pixels} orange px in ${a.orange_cells} cells / ` +
      `${a.orange_cell_rows} cell rows; ${a.distinct_colours} colours, ` +
      `${(a.non_dominant_fraction * 100).toFixed(1)}% not ${a.dominant_colour}`);
  check(a.distinct_colours >= 8 && a.non_dominant_fraction >= 0.005,
    `screenshot ${name}.png looks blank: ${a.distinct_colours} distinct colours, ` +
    `${(a.non_dominant_fraction * 100).toFixed(2)}% of pixels differ from ${a.dominant_colour}`);
  return a;
}

function checkOrange(a, name) {
  check(a.orange_pixels >= ORANGE_MIN_PIXELS,
    `screenshot ${name}.png: only ${a.orange_pixels} orange particle pixels ` +
    `(r>200, 90<g<190, b<90); need at least ${ORANGE_MIN_PIXELS}`);
  check(a.orange_cell_rows >= ORANGE_MIN_CELL_ROWS,
    `screenshot ${name}.png: the ${a.orange_pixels} orange pixels lie in only ${a.orange_cell_rows} ` +
    `row(s) of ${CELL}-px cells (bbox ${JSON.stringify(a.orange_bbox)}): that is not a particle cloud`);
}

// ------------------------------------------------------------------------------ test pieces

/**
 * Training with a falling loss: the first reading with step > 0 and a loss, then the latest after
 * >= moreSteps further steps or windowMs, whichever comes first (and after step >= minSteps).
 */
async function trainAndCheckLoss(page, fig, { minSteps, minStepsTimeoutMs, moreSteps = 150, windowMs }) {
  await setHash(page, 'train=1');
  await waitForStatus(page, (s) => s.training === true, ms(30_000), 'training == true after #train=1');
  const first = await waitForStatus(page, (s) => s.step > 0 && typeof s.loss === 'number',
    ms(minStepsTimeoutMs), 'the first training step with a loss (step > 0, loss a number)');
  const tFirst = Date.now();
  log(`first loss reading: step ${first.step}, loss ${first.loss}`);
  const atMin = await waitForStatus(page, (s) => s.step >= minSteps, ms(minStepsTimeoutMs),
    `training to reach step >= ${minSteps}`);
  log(`step ${atMin.step} reached ${((Date.now() - tFirst) / 1000).toFixed(1)} s after the first reading ` +
      `(steps_per_sec ${atMin.steps_per_sec})`);
  const remaining = Math.max(0, ms(windowMs) - (Date.now() - tFirst));
  let later;
  try {
    later = await waitForStatus(page, (s) => s.step >= first.step + moreSteps && typeof s.loss === 'number',
      remaining, `${moreSteps} more steps`);
  } catch (e) {
    if (!(e instanceof TestFailure)) throw e;
    later = await currentStatus(page); // the window ran out: compare with the latest reading
    log(`window of ${windowMs / 1000} s ran out before ${moreSteps} more steps; using step ${later.step}`);
  }
  log(`later loss reading: step ${later.step}, loss ${later.loss}`);
  Object.assign(fig, {
    loss_first: first.loss, loss_first_step: first.step,
    loss_later: later.loss, loss_later_step: later.step,
    train_seconds: Number(((Date.now() - tFirst) / 1000).toFixed(1)),
  });
  check(typeof later.loss === 'number', `loss is not a number at step ${later.step}: ${later.loss}`);
  check(later.step > first.step, `training did not advance: step ${first.step} -> ${later.step}`);
  check(later.loss < first.loss,
    `loss did not fall: ${first.loss} at step ${first.step} -> ${later.loss} at step ${later.step}`);
}

/** Changes one setting through the hash; waits for the status to show it and for a re-integration. */
async function switchSetting(page, key, value, timeoutMs) {
  const before = await currentStatus(page);
  await setHash(page, `train=1&${key}=${value}`);
  const after = await waitForStatus(page,
    (s) => String(s[key]) === String(value) && s.flow_version > before.flow_version, ms(timeoutMs),
    `${key} == ${JSON.stringify(value)} and flow_version > ${before.flow_version}`);
  log(`${key} = ${after[key]}; flow_version ${before.flow_version} -> ${after.flow_version}`);
  return after;
}

/** Samples fps and steps_per_sec for durationMs. */
async function samplePerformance(page, durationMs) {
  const samples = [];
  const start = await currentStatus(page);
  const tStart = Date.now();
  while (Date.now() - tStart < durationMs) {
    await sleep(500);
    const r = await readStatus(page);
    if (r.status) samples.push({ t: Date.now() - tStart, ...r.status });
  }
  check(samples.length > 0, 'no status readings while sampling performance');
  const end = samples[samples.length - 1];
  const stat = (k) => {
    const v = samples.map((s) => s[k]).filter((x) => typeof x === 'number').sort((a, b) => a - b);
    if (!v.length) return null;
    const r3 = (x) => Number(x.toFixed(3));
    return {
      mean: r3(v.reduce((a, b) => a + b, 0) / v.length),
      median: r3(v[v.length >> 1]),
      min: r3(v[0]),
      max: r3(v[v.length - 1]),
    };
  };
  return {
    seconds: Number(((Date.now() - tStart) / 1000).toFixed(1)),
    samples: samples.length,
    fps: stat('fps'),
    steps_per_sec: stat('steps_per_sec'),
    // Cross-checks from the counters themselves: the app's meters cover the last second or so
    // of frames, and a frame that takes seconds leaves them stale.
    steps_per_sec_from_step_counter: Number(((end.step - start.step) / (end.t / 1000)).toFixed(3)),
    fps_from_frame_counter: Number(((end.frames - start.frames) / (end.t / 1000)).toFixed(3)),
    particles: end.particles,
    particles_drawn: end.particles_drawn,
    // How long the last particle refresh and W2 evaluation took on the device.
    refresh_secs: end.refresh_secs,
    eval_secs: end.eval_secs,
    training: end.training,
  };
}

/** Waits until every layer in `want` is drawn (the status's `layers`), then a screenshot. */
async function layersDrawn(page, fig, name, want, timeoutMs) {
  const t = Date.now();
  const s = await waitForStatus(page, (x) => want.every((l) => x.layers.includes(l)), ms(timeoutMs),
    `layers ${want.join(', ')} drawn (status "layers")`);
  log(`layers drawn: ${s.layers.join(', ')} after ${((Date.now() - t) / 1000).toFixed(1)} s`);
  fig.layers = fig.layers ?? {};
  fig.layers[name] = { drawn: s.layers, seconds: Number(((Date.now() - t) / 1000).toFixed(1)) };
  fig.screens[name] = await screenshot(page, `${fig.mode}-${name}`);
  return s;
}

/**
 * The layers that show inside the flow: the page opened afresh at #train=1&layers=field,density,
 * then the likelihood, the coupling pairs and the endpoints through the hash, and the solver
 * stages of a particle picked by a click on the canvas.
 */
async function layersRun(page, url, fig, timeoutMs, { logp = true } = {}) {
  await page.goto('about:blank', { timeout: ms(60_000) });
  await page.goto(`${url}#compute=${fig.mode === 'webgpu' ? 'gpu' : 'auto'}&train=1&layers=field,density`,
    { waitUntil: 'load', timeout: ms(60_000) });
  await firstStatus(page, fig);
  const s = await layersDrawn(page, fig, 'field-density', ['field', 'density'], timeoutMs);
  check(s.training === true, 'training is off after opening #train=1&layers=field,density');
  const second = ['data', ...(logp ? ['logp'] : []), 'pairs', 'endpoints'];
  await setHash(page, `train=1&layers=${second.join(',')}`);
  await layersDrawn(page, fig, logp ? 'logp-pairs' : 'pairs', second, timeoutMs);
  // Stages: pause, take RK4, click the canvas (right of the controls, above the plots).
  await setHash(page, 'train=0&solver=rk4&layers=data,particles,trails,stages');
  await waitForStatus(page, (x) => x.solver === 'rk4' && x.training === false, ms(30_000), 'rk4, paused');
  const box = page.viewportSize() ?? { width: 1280, height: 800 };
  await page.mouse.click(Math.round(box.width * 0.6), Math.round(box.height * 0.42));
  await layersDrawn(page, fig, 'stages', ['stages', 'particles'], timeoutMs);
}

/** Drops a file on the canvas, as a user dragging it from the desktop would. */
async function dropFile(page, name, bytes, type) {
  log(`drop ${name} (${bytes.length} bytes) on the canvas`);
  await page.evaluate(({ name, data, type }) => {
    const file = new File([new Uint8Array(data)], name, { type });
    const dt = new DataTransfer();
    dt.items.add(file);
    const canvas = document.querySelector('canvas');
    for (const kind of ['dragenter', 'dragover', 'drop']) {
      canvas.dispatchEvent(new DragEvent(kind, { dataTransfer: dt, bubbles: true, cancelable: true }));
    }
  }, { name, data: Array.from(bytes), type });
}

/** The header of a safetensors file: its JSON, checked against the file's length. */
function safetensorsHeader(bytes) {
  check(bytes.length >= 8, `the downloaded weights have ${bytes.length} bytes`);
  const n = Number(bytes.readBigUInt64LE(0));
  check(8 + n <= bytes.length, `the header claims ${n} bytes of ${bytes.length}`);
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  let end = 0;
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    end = Math.max(end, info.data_offsets[1]);
  }
  check(8 + n + end === bytes.length, `the tensors end at ${8 + n + end}, the file at ${bytes.length}`);
  return header;
}

/**
 * Your data in, your results out: a shared link opens with its settings; a CSV with a junk line
 * is refused with its line named and the run kept; a good CSV becomes the data with the weights
 * carried on; Ctrl+S downloads the weights, which read back as safetensors with the Quick
 * Reference's names and the model's settings, and load again when dropped.
 */
async function filesRun(page, url, fig) {
  const shared = 'dataset=spirals&width=64&solver=heun&train=1';
  await page.goto('about:blank', { timeout: ms(60_000) });
  await page.goto(`${url}#${shared}`, { waitUntil: 'load', timeout: ms(60_000) });
  let s = await waitForStatus(page, (x) => x.data === 'spirals' && x.step > 20 &&
    x.settings.includes('width=64') && x.settings.includes('solver=heun'), ms(120_000),
    'the shared link\'s settings (spirals, width 64, heun) and 20 steps');
  fig.files = { shared_link: s.settings };
  const before = s.step;

  await dropFile(page, 'mine.csv', Buffer.from('x,y\n0.1,0.2\n0.3,oops\n'), 'text/csv');
  s = await waitForStatus(page, (x) => (x.notice ?? '').includes('mine.csv, line 3'), ms(30_000),
    'the junk line named in a notice');
  check(s.data === 'spirals' && s.step >= before, `the run was not kept: ${short(s)}`);
  fig.files.junk_notice = s.notice.split('\n')[0];

  let ring = 'x,y\n';
  for (let i = 0; i < 400; i++) ring += `${(1.5 * Math.cos(i * 0.37)).toFixed(4)},${(1.5 * Math.sin(i * 0.37)).toFixed(4)}\n`;
  const atDrop = (await currentStatus(page)).step;
  await dropFile(page, 'ring.csv', Buffer.from(ring), 'text/csv');
  s = await waitForStatus(page, (x) => x.data === 'ring.csv' && x.data_points === 400, ms(30_000),
    'ring.csv (400 points) as the data');
  check(s.step >= atDrop, `the weights did not carry on: step ${atDrop} -> ${s.step}`);
  fig.files.imported = { data: s.data, points: s.data_points, step: s.step };
  fig.screens.imported = await screenshot(page, `${fig.mode}-imported-csv`);

  await setHash(page, 'train=0');
  await waitForStatus(page, (x) => x.training === false, ms(30_000), 'paused');
  await page.locator('canvas').focus();
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: ms(60_000) }),
    page.keyboard.press('Control+KeyS'),
  ]);
  const name = download.suggestedFilename();
  const bytes = readFileSync(await download.path());
  const header = safetensorsHeader(bytes);
  const spec = JSON.parse(header.__metadata__?.flowplay ?? 'null');
  check(name.startsWith('flowplay-ring-step') && name.endsWith('.safetensors'), `download named ${name}`);
  check(['net.0.weight', 't_embed.1.weight'].every((k) => k in header), `tensors: ${Object.keys(header)}`);
  check(spec?.mlp?.hidden === 64, `the metadata's spec: ${header.__metadata__?.flowplay}`);
  fig.files.download = { name, bytes: bytes.length, tensors: Object.keys(header).length - 1 };
  log(`downloaded ${name}: ${bytes.length} bytes, hidden ${spec.mlp.hidden}`);

  await dropFile(page, name, bytes, 'application/octet-stream');
  s = await waitForStatus(page, (x) => (x.notice ?? '').includes(`Loaded ${name}`), ms(30_000),
    'the downloaded weights loaded back');
  fig.files.reloaded = s.notice.split('\n')[0].slice(0, 200);

  // A picture as the data: its dark pixels sampled to points.
  await dropFile(page, 'ink.png', inkPng(64, 48), 'image/png');
  s = await waitForStatus(page, (x) => x.data === 'ink.png' && x.data_points === 16384, ms(30_000),
    'ink.png sampled to 16 384 points as the data');
  fig.files.picture = { data: s.data, points: s.data_points };
  fig.screens.picture = await screenshot(page, `${fig.mode}-imported-png`);

  // The flow as a GIF: 41 frames, read back by the browser's own decoder.
  await page.locator('canvas').focus();
  const [gif] = await Promise.all([
    page.waitForEvent('download', { timeout: ms(300_000) }),
    page.keyboard.press('Control+Shift+KeyG'),
  ]);
  const gifName = gif.suggestedFilename();
  const gifBytes = readFileSync(await gif.path());
  check(gifName.startsWith('flowplay-ink-step') && gifName.endsWith('-flow.gif'), `GIF named ${gifName}`);
  check(gifBytes.subarray(0, 6).toString('latin1') === 'GIF89a', 'the GIF starts with GIF89a');
  const gifInfo = await page.evaluate(async (data) => {
    const decoder = new ImageDecoder({ data: new Uint8Array(data), type: 'image/gif' });
    await decoder.tracks.ready;
    const first = await decoder.decode({ frameIndex: 0 });
    return { frames: decoder.tracks.selectedTrack.frameCount, width: first.image.displayWidth,
      height: first.image.displayHeight };
  }, Array.from(gifBytes));
  check(gifInfo.frames === 41 && gifInfo.width > 100, `the GIF decodes as ${JSON.stringify(gifInfo)}`);
  fig.files.gif = { name: gifName, bytes: gifBytes.length, ...gifInfo };
  log(`GIF ${gifName}: ${gifBytes.length} bytes, ${gifInfo.frames} frames of ${gifInfo.width}x${gifInfo.height}`);
  s = await waitForStatus(page, (x) => x.capture == null, ms(30_000), 'the capture over');

  // The flow as WebM where the browser has WebCodecs, played back by a <video>.
  const webcodecs = await page.evaluate(() => typeof VideoEncoder === 'function');
  if (!webcodecs) {
    await page.keyboard.press('Control+Shift+KeyM');
    await waitForStatus(page, (x) => (x.notice ?? '').includes('no WebCodecs'), ms(30_000),
      'the notice that video needs WebCodecs');
    fig.files.webm = 'no WebCodecs: refused with a notice';
    return;
  }
  const [webm] = await Promise.all([
    page.waitForEvent('download', { timeout: ms(400_000) }),
    page.keyboard.press('Control+Shift+KeyM'),
  ]);
  const webmName = webm.suggestedFilename();
  const webmBytes = readFileSync(await webm.path());
  check(webmName.endsWith('-flow.webm'), `WebM named ${webmName}`);
  check(webmBytes.readUInt32BE(0) === 0x1a45dfa3, 'the WebM starts with the EBML magic');
  const video = await page.evaluate(async (data) => {
    const url = URL.createObjectURL(new Blob([new Uint8Array(data)], { type: 'video/webm' }));
    const v = document.createElement('video');
    v.muted = true;
    const loaded = new Promise((ok, fail) => { v.onloadeddata = ok; v.onerror = () => fail(String(v.error?.message)); });
    v.src = url;
    await loaded;
    return { width: v.videoWidth, height: v.videoHeight, duration: v.duration };
  }, Array.from(webmBytes));
  check(video.width > 100 && Math.abs(video.duration - 61 / 30) < 0.2,
    `the WebM plays as ${JSON.stringify(video)}`);
  fig.files.webm = { name: webmName, bytes: webmBytes.length, ...video };
  log(`WebM ${webmName}: ${webmBytes.length} bytes, ${video.width}x${video.height}, ${video.duration.toFixed(2)} s`);
}

/** A grey PNG of `w`×`h`: a dark disc (the data) on white, made without a library. */
function inkPng(w, h) {
  const rows = [];
  for (let y = 0; y < h; y++) {
    const row = [0]; // filter: none
    for (let x = 0; x < w; x++) {
      const r = Math.hypot(x - w / 2, y - h / 2);
      row.push(r < h / 3 ? 20 : 250);
    }
    rows.push(Buffer.from(row));
  }
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(8 + data.length + 4);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(zlib.crc32(body) >>> 0, 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // greyscale
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

async function firstStatus(page, fig) {
  const s = await waitForStatus(page, () => true, ms(60_000), 'the #flowplay-status JSON to appear');
  const problems = schemaProblems(s);
  check(problems.length === 0, `status JSON does not match the contract: ${problems.join('; ')}; ` +
    `status: ${short(s)}`);
  Object.assign(fig, { backend: s.backend, adapter: s.adapter, notice: s.notice });
  log(`status: backend ${s.backend}, adapter ${JSON.stringify(s.adapter)}, notice ${JSON.stringify(s.notice)}`);
  return s;
}

async function webgpuRun(page, url, fig) {
  await page.goto(`${url}#compute=gpu&particles=2000`, { waitUntil: 'load', timeout: ms(60_000) });
  const s = await firstStatus(page, fig);
  fig.title = await page.title();
  check(s.backend === 'gpu', `backend is ${JSON.stringify(s.backend)}, expected "gpu" ` +
    `(adapter ${JSON.stringify(s.adapter)}, notice ${JSON.stringify(s.notice)})`);
  await waitForStatus(page, (x) => x.particles === 2000, ms(30_000), 'particles == 2000 (from #particles=2000)');
  fig.screens = { initial: await screenshot(page, 'webgpu-initial') };

  // SwiftShader trains slowly (0.2–2 steps/s here, varying from run to run): generous timeouts,
  // and at least step 60, so that the later loss (a mean over 20 steps) is two windows on from
  // the first reading (step 20) rather than the same window read twice.
  await trainAndCheckLoss(page, fig, { minSteps: 60, minStepsTimeoutMs: 300_000, windowMs: 120_000 });
  fig.screens.trained = await screenshot(page, 'webgpu-trained');
  checkOrange(fig.screens.trained, 'webgpu-trained');

  await switchSetting(page, 'solver', 'heun', 60_000);
  fig.screens.heun = await screenshot(page, 'webgpu-heun');
  checkOrange(fig.screens.heun, 'webgpu-heun');

  await switchSetting(page, 'path', 'vp-cosine', 60_000);
  fig.screens.vp_cosine = await screenshot(page, 'webgpu-vp-cosine');
  checkOrange(fig.screens.vp_cosine, 'webgpu-vp-cosine');

  // The layers, on a page opened afresh; then back to the GPU for the 100k figures.
  // Not the likelihood map: on SwiftShader (a few thousand network evaluations a second) it
  // takes minutes; the GPU's is tested against the CPU on llvmpipe, and the page's below.
  await layersRun(page, url, fig, 180_000, { logp: false });
  await setHash(page, 'compute=gpu&solver=euler&layers=data,particles,trails');
  await waitForStatus(page, (x) => x.backend === 'gpu' && x.solver === 'euler', ms(60_000), 'the GPU backend again');

  // Performance with 100k particles while training.
  const s100k = await switchSetting(page, 'particles', 100000, 120_000);
  check(s100k.training === true, 'training stopped after #particles=100000');
  log('sampling fps and steps_per_sec for 10 s with 100000 particles');
  fig.perf_100k = await samplePerformance(page, 10_000);
  log(`100k particles: fps ${JSON.stringify(fig.perf_100k.fps)}, ` +
      `steps/s ${JSON.stringify(fig.perf_100k.steps_per_sec)}`);
  // A figure, not a pass criterion: on a software GPU a frame with 100k particles can take
  // seconds, so pause training first and keep going if the screenshot still times out.
  await setHash(page, 'train=0');
  try {
    fig.screens.particles_100k = await screenshot(page, 'webgpu-100k');
  } catch (e) {
    log(`(no 100k screenshot: ${String(e.message || e).split('\n')[0]})`);
  }
}

async function webglRun(page, url, fig) {
  await page.goto(url, { waitUntil: 'load', timeout: ms(60_000) });
  const s = await firstStatus(page, fig);
  fig.title = await page.title();
  check(s.backend === 'cpu', `backend is ${JSON.stringify(s.backend)}, expected "cpu" without WebGPU ` +
    `(adapter ${JSON.stringify(s.adapter)})`);
  check(s.notice !== null && s.notice !== '', 'notice is null: the app should say that WebGPU is unavailable');
  log(`notice: ${s.notice}` + (/webgpu|cpu/i.test(s.notice) ? '' : '   (note: mentions neither WebGPU nor the CPU)'));
  fig.screens = { initial: await screenshot(page, 'webgl-initial') };

  await trainAndCheckLoss(page, fig, { minSteps: 200, minStepsTimeoutMs: 120_000, windowMs: 120_000 });
  fig.screens.trained = await screenshot(page, 'webgl-trained');
  checkOrange(fig.screens.trained, 'webgl-trained');
  log('sampling fps and steps_per_sec for 5 s');
  fig.perf = await samplePerformance(page, 5_000);
  await layersRun(page, url, fig, 60_000);
  await filesRun(page, url, fig);
  await teachRun(page, url, fig);
}

/** The lab and two runs side by side, opened by address as a teacher's link would. */
async function teachRun(page, url, fig) {
  fig.teach = {};
  await page.goto('about:blank', { timeout: ms(60_000) });
  await page.goto(`${url}#lesson=5&open=lab&particles=500`, { waitUntil: 'load', timeout: ms(60_000) });
  let s = await waitForStatus(page, (x) => x.lesson === 5 && x.lab_measured >= 18, ms(180_000),
    'lesson 5 with its lab swept');
  fig.teach.lab = { step: s.step, lab_measured: s.lab_measured };
  fig.screens.lab = await screenshot(page, `${fig.mode}-lab`);
  await setHash(page, `lesson=7&second=coupling&particles=500`);
  s = await waitForStatus(page, (x) => x.lesson === 7 && x.second?.runs === 'OT coupling'
      && x.second.w2 != null && x.w2 != null && x.second.step >= 100, ms(240_000),
    'lesson 7 with a second run (OT) trained and evaluated');
  fig.teach.second = { a_w2: s.w2, b_w2: s.second.w2, b_step: s.second.step };
  log(`two runs: A (independent) W2 ${s.w2?.toFixed(3)}, B (OT) W2 ${s.second.w2?.toFixed(3)} at B's step ${s.second.step}`);
  fig.screens.two_runs = await screenshot(page, `${fig.mode}-two-runs`);
}

/** A phone-sized page (390×844, touch) opened at #lesson=3: the canvas spans it and training runs. */
async function phoneRun(page, url, fig) {
  await page.goto(`${url}#lesson=3&particles=500`, { waitUntil: 'load', timeout: ms(60_000) });
  let s = await waitForStatus(page, (x) => x.lesson === 3 && x.training === true, ms(60_000),
    'lesson 3 open and training');
  check(s.data === '8gaussians', `lesson 3 trains on 8gaussians, got ${s.data}`);
  s = await waitForStatus(page, (x) => Array.isArray(x.canvas_rect), ms(30_000), 'the canvas drawn');
  const [x, , width, height] = s.canvas_rect;
  check(width >= 350, `the canvas is ${width} CSS px wide on a 390 px page (wanted >= 350)`);
  check(x >= 0 && x + width <= 390.5, `the canvas [${s.canvas_rect}] runs off the 390 px page`);
  const first = s.step;
  s = await waitForStatus(page, (x) => x.step >= first + 50, ms(120_000), '50 more training steps');
  fig.phone = { canvas_rect: s.canvas_rect, step: s.step, steps_per_sec: s.steps_per_sec };
  log(`phone: canvas ${width.toFixed(0)}×${height.toFixed(0)} CSS px, step ${s.step}`);
  fig.screens = { phone: await screenshot(page, 'phone-lesson3') };
}

// ------------------------------------------------------------------------------ the runner

async function inBrowser(mode, flags, body, { viewport = { width: 1280, height: 800 }, phone = false } = {}) {
  const fig = { mode, flags, ok: false };
  const userDir = mkdtempSync(join(tmpdir(), `flowplay-${mode}-`));
  const events = []; // console messages, page errors, failed requests, in order
  const pageErrors = [];
  const stamp = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
  let context;
  const tStart = Date.now();
  log(`=== ${mode}: launching ${CHROMIUM} ${flags.join(' ')}`);
  try {
    context = await chromium.launchPersistentContext(userDir, {
      executablePath: CHROMIUM,
      ignoreDefaultArgs: ['--headless'],
      args: flags,
      viewport,
      deviceScaleFactor: 1,
      isMobile: phone,
      hasTouch: phone,
      timeout: ms(60_000),
    });
    fig.browser_version = context.browser()?.version() ?? null;
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => {
      const where = m.type() === 'error' && m.location()?.url ? ` (${m.location().url})` : '';
      events.push(`[${stamp()}] console.${m.type()}: ${m.text()}${where}`);
    });
    page.on('pageerror', (e) => {
      pageErrors.push(e);
      events.push(`[${stamp()}] PAGE ERROR: ${e.stack || e.message}`);
    });
    page.on('crash', () => events.push(`[${stamp()}] PAGE CRASHED`));
    page.on('requestfailed', (r) => events.push(`[${stamp()}] request failed: ${r.url()} ${r.failure()?.errorText}`));
    page.on('response', (r) => {
      if (r.status() >= 400) events.push(`[${stamp()}] HTTP ${r.status()}: ${r.url()}`);
    });
    try {
      await body(page, fig);
      check(pageErrors.length === 0,
        `${pageErrors.length} uncaught page error(s); first: ${pageErrors[0]?.message}`);
      fig.ok = true;
    } catch (e) {
      fig.error = e.message;
      try {
        fig.failure_screen = await screenshot(page, `${mode}-failure`);
      } catch (e2) {
        events.push(`(failure screenshot not taken or blank: ${e2.message})`);
      }
      throw e;
    }
  } catch (e) {
    fig.error = fig.error ?? e.message;
    console.error(`\n${mode}: FAIL: ${e instanceof TestFailure ? e.message : e.stack || e}`);
    console.error(`--- ${mode}: browser console and page errors (${events.length}) ---`);
    for (const line of events.slice(-200)) console.error(line);
    console.error(`--- end of ${mode} log ---\n`);
  } finally {
    if (context) await context.close().catch(() => {});
    rmSync(userDir, { recursive: true, force: true });
    fig.seconds = Number(((Date.now() - tStart) / 1000).toFixed(1));
    fig.console_messages = events.length;
    fig.page_errors = pageErrors.map((e) => e.message);
    log(`=== ${mode}: ${fig.ok ? 'PASS' : 'FAIL'} in ${fig.seconds} s`);
  }
  return fig;
}

function summaryTable(runs) {
  const rows = [];
  const f = (v) => (v === undefined || v === null ? '-' : typeof v === 'number' ? String(v) : String(v));
  for (const r of runs) {
    const p = r.perf_100k || r.perf;
    const add = (k, v) => rows.push([r.mode, k, f(v)]);
    add('result', r.ok ? 'PASS' : `FAIL: ${r.error}`.slice(0, 100));
    add('seconds', r.seconds);
    add('backend / adapter', r.backend ? `${r.backend} / ${r.adapter}` : undefined);
    add('loss first -> later', r.loss_first !== undefined
      ? `${r.loss_first} (step ${r.loss_first_step}) -> ${r.loss_later} (step ${r.loss_later_step})` : undefined);
    if (r.screens?.trained) add('orange px (trained)', r.screens.trained.orange_pixels);
    for (const [name, l] of Object.entries(r.layers ?? {})) add(`layers ${name}`, `${l.drawn.join(',')} in ${l.seconds} s`);
    if (r.files?.download) add('files', `junk refused; ${r.files.imported.points} points imported; ` +
      `weights downloaded (${r.files.download.bytes} B) and loaded back; ` +
      `ink.png as ${r.files.picture?.points} points; GIF ${r.files.gif?.frames} frames ` +
      `(${r.files.gif?.bytes} B); WebM ${typeof r.files.webm === 'string' ? r.files.webm : `${r.files.webm?.bytes} B, ${r.files.webm?.duration?.toFixed(2)} s`}`);
    if (r.teach) add('lab, two runs', `lesson 5 swept (${r.teach.lab.lab_measured} settings, at step ${r.teach.lab.step}); lesson 7: A W2 ` +
      `${r.teach.second?.a_w2?.toFixed(3)}, B (OT) W2 ${r.teach.second?.b_w2?.toFixed(3)}`);
    if (r.phone) add('phone 390x844, #lesson=3', `canvas ${r.phone.canvas_rect.map((v) => v.toFixed(0)).join(',')}; ` +
      `step ${r.phone.step}`);
    if (p) {
      const label = r.perf_100k ? ' @100k particles' : '';
      add(`fps mean/median${label}`, p.fps ? `${p.fps.mean} / ${p.fps.median}` : undefined);
      add(`steps/s mean/median${label}`, p.steps_per_sec ? `${p.steps_per_sec.mean} / ${p.steps_per_sec.median}` : undefined);
      add('steps/s, fps from counters', `${p.steps_per_sec_from_step_counter} / ${p.fps_from_frame_counter}`);
      const secs = (v) => (typeof v === 'number' ? `${v.toFixed(2)} s` : '–');
      add('last refresh / evaluation', `${secs(p.refresh_secs)} / ${secs(p.eval_secs)}`);
    }
  }
  const w = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i].length), 4));
  const line = (r) => r.map((c, i) => c.padEnd(w[i])).join(' | ');
  console.log('\n' + line(['run', 'figure', 'value']));
  console.log(w.map((n) => '-'.repeat(n)).join('-+-'));
  for (const r of rows) console.log(line(r));
  console.log('');
}

/** The wasm file the page loads, as served: its size, and gzipped at level 9. */
async function bundleSize(url) {
  const html = await (await fetch(url)).text();
  const file = html.match(/[\w.-]+_bg\.wasm/)?.[0];
  if (!file) throw new TestFailure(`the page at ${url} names no *_bg.wasm file`);
  const bytes = Buffer.from(await (await fetch(new URL(file, url))).arrayBuffer());
  const gzip = zlib.gzipSync(bytes, { level: 9 });
  return { file, bytes: bytes.length, gzip_bytes: gzip.length };
}

async function main() {
  const argv = process.argv.slice(2);
  const url = argv.find((a) => !a.startsWith('--'));
  const only = (argv.find((a) => a.startsWith('--only=')) || '').slice('--only='.length);
  if (!url || (only && !['webgpu', 'webgl', 'phone'].includes(only))) {
    console.error('usage: node playground.test.mjs <url> [--only=webgpu|webgl|phone]');
    process.exit(2);
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  const require = createRequire(import.meta.url);
  const pwVersion = JSON.parse(readFileSync(require.resolve('playwright-core/package.json'), 'utf8')).version;
  log(`flowplay browser test: ${url} (playwright-core ${pwVersion}, timeout scale ${SCALE})`);

  const bundle = await bundleSize(url);
  log(`bundle: ${bundle.file} ${(bundle.bytes / 1e6).toFixed(2)} MB, ` +
      `${(bundle.gzip_bytes / 1e6).toFixed(2)} MB gzipped (budget ${BUNDLE_GZIP_MAX_BYTES / 1e6} MB)`);

  const runs = [];
  if (!only || only === 'webgpu') {
    runs.push(await inBrowser('webgpu', WEBGPU_FLAGS, (page, fig) => webgpuRun(page, url, fig)));
  }
  if (!only || only === 'webgl') {
    runs.push(await inBrowser('webgl', BASE_FLAGS, (page, fig) => webglRun(page, url, fig)));
  }
  if (!only || only === 'phone') {
    runs.push(await inBrowser('phone', BASE_FLAGS, (page, fig) => phoneRun(page, url, fig),
      { viewport: { width: 390, height: 844 }, phone: true }));
  }

  const figures = {
    date: new Date().toISOString(),
    url,
    playwright_core: pwVersion,
    chromium: CHROMIUM,
    bundle,
    runs: Object.fromEntries(runs.map((r) => [r.mode, r])),
  };
  writeFileSync(join(ARTIFACTS, 'figures.json'), JSON.stringify(figures, null, 2) + '\n');
  summaryTable(runs);
  log(`figures: ${join(ARTIFACTS, 'figures.json')}`);
  const failed = runs.filter((r) => !r.ok).map((r) => `${r.mode}: ${r.error}`);
  if (bundle.gzip_bytes > BUNDLE_GZIP_MAX_BYTES) {
    failed.push(`the wasm bundle is ${(bundle.gzip_bytes / 1e6).toFixed(2)} MB gzipped, over the ` +
      `${BUNDLE_GZIP_MAX_BYTES / 1e6} MB budget`);
  }
  if (failed.length) {
    console.error(`browser test: FAIL (${failed.join('; ')})`);
    process.exit(1);
  }
  console.log('browser test: PASS');
}

main().catch((e) => {
  console.error('browser test: FAIL (harness error):', e.stack || e);
  process.exit(1);
});

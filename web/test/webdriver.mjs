// A small W3C WebDriver client (HTTP + JSON, Node's fetch) that gives Firefox (geckodriver)
// and WebKitGTK (WebKitWebDriver) pages the part of playwright-core's Page API the browser
// tests use: goto, reload, evaluate(fn, arg), waitForFunction, close. playwright-core drives
// only its own browser builds; these drivers drive Debian's.
//
// A session runs one command at a time, so pages (windows of one session, sharing one
// profile, as tabs do) take turns: each command switches to its window first.

import { spawn } from 'node:child_process';
import net from 'node:net';

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Start a driver binary on a free port and wait until it answers /status. */
async function startDriver(binary, portArg, env = process.env) {
  const port = await freePort();
  const child = spawn(binary, [portArg(port)], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`${binary} exited: ${stderr}`);
    try {
      const r = await fetch(`${url}/status`);
      if (r.ok) return { url, child, stderr: () => stderr };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`${binary} did not start: ${stderr}`);
}

class WebDriverError extends Error {
  constructor(command, value) {
    super(`WebDriver ${command}: ${value?.error}: ${value?.message}`);
    this.error = value?.error;
  }
}

/** A WebDriver session; its pages are its windows. */
class Session {
  constructor(driver, id) {
    this.driver = driver;
    this.id = id;
    this.queue = Promise.resolve();
    this.current = null;
  }

  async raw(method, path, body) {
    if (process.env.LIKENESS_WEBDRIVER_DEBUG) console.error(`webdriver: ${method} ${path} ${JSON.stringify(body ?? '').slice(0, 120)}`);
    const r = await fetch(`${this.driver.url}/session/${this.id}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await r.json();
    if (!r.ok) throw new WebDriverError(`${method} ${path}`, json.value);
    return json.value;
  }

  /** Run `work` alone on the session, in `handle`'s window. */
  exclusive(handle, work) {
    const run = this.queue.then(async () => {
      if (handle && this.current !== handle) {
        await this.raw('POST', '/window', { handle });
        this.current = handle;
      }
      return work();
    });
    this.queue = run.catch(() => {});
    return run;
  }
}

/**
 * The JS run for evaluate(). Firefox runs WebDriver scripts in a sandbox realm of their own
 * (its Uint8Array is not the page's), so the function runs in the page's realm instead, as a
 * <script> element, and hands its result back as JSON in a DOM event, which crosses realms.
 * The result is also kept in an attribute of the root element (empty while the function
 * runs), until the next evaluate drops it: Firefox's Execute Async Script now and then
 * answers null instead of the script's result (geckodriver#1992; seen once in CI), and then
 * `evaluate` reads it there.
 */
const EVALUATE = `
const [source, argJson, id, previous, done] = arguments;
const root = document.documentElement;
if (previous) root.removeAttribute(previous);
root.setAttribute(id, '');
document.addEventListener(id, (e) => done(JSON.parse(e.detail)), { once: true });
const script = document.createElement('script');
script.textContent = \`(() => {
  const reply = (r) => {
    const detail = JSON.stringify(r);
    document.documentElement.setAttribute(\${JSON.stringify(id)}, detail);
    document.dispatchEvent(new CustomEvent(\${JSON.stringify(id)}, { detail }));
  };
  Promise.resolve()
    .then(() => (\${source})(JSON.parse(\${JSON.stringify(argJson)})))
    .then(
      (value) => reply({ ok: true, value: value === undefined ? { undefined: true } : { json: JSON.stringify(value) } }),
      (e) => reply({ ok: false, name: e?.name, message: String(e?.message ?? e), stack: String(e?.stack ?? '') }),
    );
})();\`;
(document.head ?? root).append(script);
script.remove();`;

/** After a null answer: the result kept under `id`, once the function has finished. */
const KEPT_RESULT = `
const root = document.documentElement;
return root?.getAttribute(arguments[0]) ?? null;`;

const withoutHash = (url) => url.split('#')[0];

/** A script that hangs fails after 5 minutes instead of holding the session (and every later test) forever. */
const SCRIPT_TIMEOUT_MS = 300_000;

/**
 * Ask `probe` every `interval` ms until it answers something other than undefined, and
 * return that; after `timeout` ms throw an Error saying `timedOut`.
 */
async function poll(probe, { timeout, interval, timedOut }) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const answer = await probe();
    if (answer !== undefined) return answer;
    if (Date.now() > deadline) throw new Error(timedOut);
    await new Promise((r) => setTimeout(r, interval));
  }
}

class Page {
  constructor(session, handle) {
    this.session = session;
    this.handle = handle;
    this.closed = false;
    /** The attribute holding the last evaluate's result (EVALUATE), dropped by the next. */
    this.lastEvaluate = null;
  }

  on() {
    // page errors surface through evaluate's rejections here
  }

  command(method, path, body) {
    return this.session.exclusive(this.handle, () => this.session.raw(method, path, body));
  }

  async goto(url) {
    const from = await this.command('GET', '/url').catch(() => null);
    const sameDocument = from != null && new URL(url).hash !== '' && withoutHash(from) === withoutHash(url);
    await this.#navigating(sameDocument, () => this.command('POST', '/url', { url }));
  }

  async reload() {
    await this.#navigating(false, () => this.command('POST', '/refresh', {}));
  }

  /**
   * Run a navigation command, then, when it replaces the document, wait until the old one is
   * gone: Firefox's Navigate To was seen to return while the old document still answered (a
   * test read the old page, then "the page navigated" under its next evaluate).
   */
  async #navigating(sameDocument, navigate) {
    // An attribute, not a global: every realm sees it (Firefox runs these scripts in a sandbox).
    const mark = 'data-webdriver-old-document';
    if (!sameDocument) {
      await this.command('POST', '/execute/sync', { script: `document.documentElement?.setAttribute('${mark}', '');`, args: [] }).catch(() => {});
    }
    await navigate();
    if (sameDocument) return;
    const probe = { script: `return !!document.documentElement?.hasAttribute('${mark}');`, args: [] };
    await poll(async () => ((await this.command('POST', '/execute/sync', probe).catch(() => true)) ? undefined : true), {
      timeout: 60_000,
      interval: 50,
      timedOut: 'navigation: the old document was still there after 60 s',
    });
  }

  /** The result EVALUATE kept under `id`, waiting while the function still runs. */
  async #keptResult(id) {
    const kept = await poll(
      async () => {
        const kept = await this.command('POST', '/execute/sync', { script: KEPT_RESULT, args: [id] });
        if (kept == null) throw new Error('evaluate: no result (the page navigated or closed while the script ran)');
        return kept === '' ? undefined : kept;
      },
      { timeout: SCRIPT_TIMEOUT_MS, interval: 50, timedOut: `evaluate: no result after ${SCRIPT_TIMEOUT_MS / 1000} s` },
    );
    return JSON.parse(kept);
  }

  /** Like playwright's page.evaluate: `fn` is serialised by its source, `arg` as JSON. */
  async evaluate(fn, arg) {
    const source = typeof fn === 'function' ? fn.toString() : `() => (${fn})`;
    const id = `data-webdriver-evaluate-${Math.random().toString(36).slice(2)}`;
    const previous = this.lastEvaluate;
    this.lastEvaluate = id;
    const result =
      (await this.command('POST', '/execute/async', { script: EVALUATE, args: [source, JSON.stringify(arg ?? null), id, previous] })) ??
      (await this.#keptResult(id));
    if (!result.ok) {
      const e = new Error(`${result?.name ?? 'Error'}: ${result?.message}\n${result?.stack ?? ''}`);
      e.name = result?.name ?? 'Error';
      throw e;
    }
    return result.value.undefined ? undefined : JSON.parse(result.value.json);
  }

  async waitForFunction(expression, _arg, { timeout = 60_000 } = {}) {
    const probe = { script: `return !!(${expression});`, args: [] };
    await poll(async () => ((await this.command('POST', '/execute/sync', probe).catch(() => false)) ? true : undefined), {
      timeout,
      interval: 100,
      timedOut: `waitForFunction timed out: ${expression}`,
    });
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    await this.session.exclusive(this.handle, async () => {
      await this.session.raw('DELETE', '/window');
      // A session needs a current window for its next command: back to the blank one.
      await this.session.raw('POST', '/window', { handle: this.session.blank });
      this.session.current = this.session.blank;
    });
  }
}

/**
 * A browser behind a WebDriver session, shaped like the tests' playwright context:
 * `context.newPage()`, `close()`.
 */
async function open(driver, capabilities) {
  const r = await fetch(`${driver.url}/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ capabilities: { alwaysMatch: capabilities } }),
  });
  const json = await r.json();
  if (!r.ok) {
    driver.child.kill('SIGKILL');
    throw new WebDriverError('new session', json.value);
  }
  const session = new Session(driver, json.value.sessionId);
  await session.raw('POST', '/timeouts', { script: SCRIPT_TIMEOUT_MS, pageLoad: SCRIPT_TIMEOUT_MS });
  // The session's first window is kept blank so the session outlives every page.
  session.blank = await session.raw('GET', '/window');
  session.current = session.blank;
  const context = {
    async newPage() {
      // A window, not a tab: WebKit defers media loading and throttles hidden pages, and a
      // background tab is hidden; every page here is a visible window, as a person's tab is.
      const handle = await session.exclusive(session.blank, async () => (await session.raw('POST', '/window/new', { type: 'window' })).handle);
      return new Page(session, handle);
    },
  };
  return {
    context,
    version: json.value.capabilities?.browserVersion ?? null,
    close: async () => {
      await session.exclusive(null, () => fetch(`${driver.url}/session/${session.id}`, { method: 'DELETE' })).catch(() => {});
      driver.child.kill('SIGTERM');
    },
  };
}

/**
 * Headless Debian Firefox ESR through geckodriver (GECKODRIVER, else on PATH). `prefs` are
 * set in its fresh profile.
 */
export async function launchFirefox(prefs = {}) {
  const driver = await startDriver(process.env.GECKODRIVER ?? 'geckodriver', (port) => `--port=${port}`);
  return open(driver, {
    browserName: 'firefox',
    'moz:firefoxOptions': {
      binary: process.env.FIREFOX ?? '/usr/bin/firefox-esr',
      args: ['-headless'],
      prefs: {
        'dom.disable_open_during_load': false,
        'browser.shell.checkDefaultBrowser': false,
        'datareporting.policy.dataSubmissionEnabled': false,
        'toolkit.telemetry.reportingpolicy.firstRun': false,
        ...prefs,
      },
    },
  });
}

/**
 * WebKitGTK's MiniBrowser in automation mode through WebKitWebDriver (WEBKIT_WEBDRIVER, else
 * on PATH). It needs a display: run under xvfb-run (the test script does), or it starts one.
 */
export async function launchWebKit(args = []) {
  const driver = await startDriver(process.env.WEBKIT_WEBDRIVER ?? 'WebKitWebDriver', (port) => `--port=${port}`);
  return open(driver, {
    browserName: 'MiniBrowser',
    'webkitgtk:browserOptions': {
      binary: process.env.MINIBROWSER ?? '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser',
      args: ['--automation', ...args],
    },
  });
}

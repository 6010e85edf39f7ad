// Open every Superset dashboard in a real browser, check that each chart rendered without
// an error, and save a full-page screenshot of each.
//
// playwright-core only (no browser download): it drives the Chromium that Debian's
// `chromium` package installs (scripts/setup_browser.sh). Run by tests/test_browser.py:
//
//   SUPERSET_URL=http://127.0.0.1:8088 SUPERSET_USER=admin SUPERSET_PASSWORD=... \
//   SCREENSHOT_DIR=state/screenshots node tests/browser/dashboards.mjs
//
// LANGUAGE (ru | en) switches the session's interface language first (Superset's /lang/).
// FORMAT_CHECKS names a JSON file {charts: [{title, money: [labels], oneDecimal: [labels],
// big: bool}], mark, decimal}: on the rendered page, every value of a money column or money
// number must carry the currency mark, and no value of a one-decimal column or number
// (durations) may show two decimals or more.
//
// Prints one JSON object on the last line of stdout: {dashboards: [{title, slug, charts,
// chartRequests, cachedRequests (answered from Superset's cache), failedRequests, errorsInPage,
// formatProblems, checkedValues, renderSeconds, slowestRequests,
// screenshot}], errors: [...]}; renderSeconds: from opening the dashboard until every chart
// has drawn; slowestRequests: the five slowest chart-data calls {chart, ms, outcome}, those
// that never answered (the browser gave up) included.
// Exits 1 when any chart failed, 2 on a setup problem.
import { readFileSync } from "node:fs";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const base = process.env.SUPERSET_URL ?? "http://127.0.0.1:8088";
const user = process.env.SUPERSET_USER ?? "admin";
const password = process.env.SUPERSET_PASSWORD ?? "";
const outDir = process.env.SCREENSHOT_DIR ?? "state/screenshots";
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const timeoutMs = Number(process.env.DASHBOARD_TIMEOUT_MS ?? 120000);
const loginTimeoutMs = Number(process.env.LOGIN_TIMEOUT_MS ?? 180000);
const language = process.env.LANGUAGE ?? "";
const formatChecks = process.env.FORMAT_CHECKS
  ? JSON.parse(readFileSync(process.env.FORMAT_CHECKS, "utf-8"))
  : { charts: [], mark: "", decimal: "." };

// Check the values of one rendered chart (runs in the page): returns [problems, checked].
function checkChart(holder, spec) {
  const problems = [];
  let checked = 0;
  const esc = spec.decimal === "," ? "," : "\\.";
  const tooManyDecimals = new RegExp(`${esc}\\d{2,}`);
  const check = (text, money, oneDecimal, where) => {
    const value = text.trim();
    if (!value || value === "N/A" || value === "–" || value === "-") return;
    checked += 1;
    if (money && !value.includes(spec.mark)) problems.push(`${where}: "${value}" lacks ${spec.mark}`);
    if (oneDecimal && tooManyDecimals.test(value)) problems.push(`${where}: "${value}" has more than one decimal`);
  };
  if (spec.big) {
    const header = holder.querySelector(".header-line");
    if (!header) return [[`${spec.title}: no big number drawn`], 0];
    check(header.innerText, spec.money.length > 0, spec.oneDecimal.length > 0, spec.title);
    return [problems, checked];
  }
  const heads = [...holder.querySelectorAll("thead th")].map((th) => th.innerText.trim());
  for (const [labels, money] of [[spec.money, true], [spec.oneDecimal, false]]) {
    for (const label of labels) {
      const index = heads.indexOf(label);
      if (index < 0) {
        problems.push(`${spec.title}: no column "${label}" among ${JSON.stringify(heads)}`);
        continue;
      }
      for (const row of holder.querySelectorAll("tbody tr")) {
        const cell = row.querySelectorAll("td")[index];
        if (cell) check(cell.innerText, money, !money, `${spec.title} / ${label}`);
      }
    }
  }
  return [problems, checked];
}

// Superset shows a failed chart as an error alert inside the chart holder.
const ERROR_SELECTORS = [
  ".dashboard-component-chart-holder [role='alert']",
  ".dashboard-component-chart-holder .alert-danger",
  ".dashboard-component-chart-holder [data-test='error-alert']",
  ".dashboard-component-chart-holder .ant-alert-error",
];
// what a rendered chart contains: ECharts canvas, a table, an SVG, a big number, an error
const DRAWN_SELECTOR = "canvas, table, svg, .header-line, [role='alert']";
const VIEWPORT_HEIGHT = Number(process.env.VIEWPORT_HEIGHT ?? 6000);
const LOADING_SELECTOR = ".dashboard-component-chart-holder .loading, .dashboard-component-chart-holder [aria-label='Loading']";

// Log in through the form. On a loaded machine the login page's script can still be
// starting when the fields are filled, and re-renders them empty: check what the fields
// hold, and try again (a fresh page) when the form did not take us away from /login.
const LOGIN_ATTEMPTS = 3;
async function login(page) {
  let last = "";
  for (let attempt = 1; attempt <= LOGIN_ATTEMPTS; attempt++) {
    await page.goto(`${base}/login/`, { waitUntil: "load", timeout: loginTimeoutMs });
    const userField = page.locator("input[name='username'], #username").first();
    const passwordField = page.locator("input[name='password'], #password").first();
    await userField.fill(user);
    await passwordField.fill(password);
    if ((await userField.inputValue()) !== user || (await passwordField.inputValue()) !== password) {
      last = `attempt ${attempt}: the form was re-rendered empty`;
      continue;
    }
    // wait for the redirect away from /login to be committed, not for the welcome page's
    // `load` event: on a busy machine its bundles alone can take over a minute
    try {
      await Promise.all([
        page.waitForURL((url) => !url.pathname.startsWith("/login"), {
          timeout: loginTimeoutMs / LOGIN_ATTEMPTS,
          waitUntil: "commit",
        }),
        page.locator("button[type='submit'], input[type='submit']").first().click(),
      ]);
      return;
    } catch (err) {
      const flash = await page
        .locator(".alert, [role='alert']")
        .allInnerTexts()
        .catch(() => []);
      last = `attempt ${attempt}: still on ${page.url()} (${flash.join(" | ") || "no message"}): ${err}`;
    }
  }
  throw new Error(`login failed after ${LOGIN_ATTEMPTS} attempts; last: ${last}`);
}

async function main() {
  mkdirSync(outDir, { recursive: true });
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    // root in containers/CI: Chromium's sandbox needs user namespaces it may not get
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
  });
  const result = { dashboards: [], errors: [] };
  try {
    const context = await browser.newContext({ viewport: { width: 1600, height: 1000 } });
    const page = await context.newPage();
    // a loaded CI machine serves Superset's first pages slowly: generous, explicit limits
    page.setDefaultNavigationTimeout(loginTimeoutMs);
    page.setDefaultTimeout(timeoutMs);
    await login(page);

    if (language) {
      const switched = await page.request.get(`${base}/lang/${language}`);
      if (!switched.ok()) throw new Error(`language ${language}: HTTP ${switched.status()}`);
    }
    const resp = await page.request.get(`${base}/api/v1/dashboard/?q=(page_size:100)`);
    if (!resp.ok()) throw new Error(`dashboard list: HTTP ${resp.status()}`);
    const dashboards = (await resp.json()).result;

    for (const d of dashboards) {
      const entry = {
        title: d.dashboard_title,
        slug: d.slug,
        charts: 0,
        chartRequests: 0,
        // of those, answered from Superset's cache (every query of the response)
        cachedRequests: 0,
        failedRequests: [],
        errorsInPage: [],
        // what each chart's data request filtered on: dashboard filters must reach charts
        requests: [],
        // every chart-data call: {chart, ms, outcome} (outcome: the HTTP status, or why it failed)
        timings: [],
        formatProblems: [],
        checkedValues: 0,
        renderSeconds: null,
        screenshot: null,
      };
      const names = new Map();
      const sent = new Map(); // request -> [chart, time sent]
      const chartOf = (r) => {
        const sliceId = Number(/slice_id%22%3A(\d+)/.exec(r.url())?.[1] ?? NaN);
        return Number.isNaN(sliceId) ? "filter values" : (names.get(sliceId) ?? String(sliceId));
      };
      const onRequest = (r) => {
        if (!r.url().includes("/api/v1/chart/data") || r.method() !== "POST") return;
        sent.set(r, [chartOf(r), Date.now()]);
        const sliceId = Number(/slice_id%22%3A(\d+)/.exec(r.url())?.[1] ?? NaN);
        if (Number.isNaN(sliceId)) return; // a filter's own value query
        let body = {};
        try {
          body = JSON.parse(r.postData() ?? "{}");
        } catch {
          body = {};
        }
        const filters = (body.queries ?? []).flatMap((q) => q.filters ?? []);
        entry.requests.push({
          chart: names.get(sliceId) ?? String(sliceId),
          filters: filters.map((f) => `${f.col} ${f.op}${f.val === undefined ? "" : " " + JSON.stringify(f.val)}`),
        });
      };
      const timed = (r, outcome) => {
        const [chart, at] = sent.get(r) ?? [chartOf(r), NaN];
        sent.delete(r);
        entry.timings.push({ chart, ms: Date.now() - at, outcome });
      };
      const onFailed = (r) => {
        if (r.url().includes("/api/v1/chart/data")) timed(r, r.failure()?.errorText ?? "failed");
      };
      const onResponse = async (r) => {
        if (!r.url().includes("/api/v1/chart/data")) return;
        timed(r.request(), r.status());
        entry.chartRequests += 1;
        let body = null;
        try {
          body = await r.json();
        } catch {
          body = null;
        }
        const results = body?.result ?? [];
        if (results.length && results.every((q) => q.is_cached)) entry.cachedRequests += 1;
        const failed = results.filter((q) => q.error || q.status === "failed");
        if (r.status() !== 200 || failed.length) {
          entry.failedRequests.push({
            status: r.status(),
            message: (body?.message ?? failed.map((q) => q.error).join("; ") ?? "").slice(0, 300),
          });
        }
      };
      page.on("request", onRequest);
      page.on("response", onResponse);
      page.on("requestfailed", onFailed);
      const chartsResp = await page.request.get(`${base}/api/v1/dashboard/${d.id}/charts`);
      const chartList = (await chartsResp.json()).result;
      for (const c of chartList) names.set(c.id, c.slice_name);
      entry.charts = chartList.length;
      // tall enough that every chart is in view (dashboards render charts lazily); never
      // resized while the dashboard is open (a resize makes it re-render every chart)
      await page.setViewportSize({ width: 1600, height: VIEWPORT_HEIGHT });
      const opened = Date.now();
      await page.goto(`${base}/superset/dashboard/${d.slug || d.id}/`, { waitUntil: "domcontentloaded" });
      const deadline = opened + timeoutMs;
      // wait until every chart holder has rendered (no spinner) and the data calls settled
      for (;;) {
        const holders = await page.locator(".dashboard-component-chart-holder").count();
        const loading = await page.locator(LOADING_SELECTOR).count();
        const drawn = await page.locator(`.dashboard-component-chart-holder:has(${DRAWN_SELECTOR})`).count();
        if (holders >= entry.charts && loading === 0 && drawn >= entry.charts && entry.chartRequests >= entry.charts) break;
        if (Date.now() > deadline) {
          entry.errorsInPage.push(
            `timeout: ${holders} holders, ${drawn} drawn, ${loading} loading, ${entry.chartRequests}/${entry.charts} data calls`,
          );
          break;
        }
        await page.waitForTimeout(500);
      }
      entry.renderSeconds = (Date.now() - opened) / 1000;
      await page.waitForTimeout(1500); // let ECharts finish its animation for the screenshot
      const texts = new Set();
      for (const text of await page.locator(ERROR_SELECTORS.join(", ")).allInnerTexts()) {
        texts.add(text.trim().replace(/\s+/g, " ").slice(0, 300));
      }
      entry.errorsInPage.push(...texts);
      // the formats of money and durations as the reader sees them
      const specs = new Map(formatChecks.charts.map((c) => [c.title, c]));
      for (const holder of await page.locator(".dashboard-component-chart-holder").all()) {
        // no waiting: a text block's holder has no title
        const title = await holder.evaluate(
          (el) => el.querySelector("[data-test='editable-title']")?.innerText.trim() ?? "",
        );
        const spec = specs.get(title);
        if (!spec) continue;
        const [problems, checked] = await holder.evaluate(
          (el, [fn, arg]) => new Function(`return (${fn})`)()(el, arg),
          [checkChart.toString(), { ...spec, mark: formatChecks.mark, decimal: formatChecks.decimal }],
        );
        entry.formatProblems.push(...problems);
        entry.checkedValues += checked;
      }
      // clip the shot at the last chart (the window is taller than the dashboard; a
      // full-page shot or a resize would make the dashboard re-render its charts)
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.waitForTimeout(300);
      const bottom = await page.evaluate(() =>
        Math.max(
          600,
          ...[...document.querySelectorAll(".dashboard-component-chart-holder")].map(
            (el) => el.getBoundingClientRect().bottom + window.scrollY,
          ),
        ),
      );
      const file = join(outDir, `${(d.slug || String(d.id)).replace(/[^A-Za-z0-9_-]+/g, "_")}.png`);
      await page.screenshot({
        path: file,
        clip: { x: 0, y: 0, width: 1600, height: Math.min(VIEWPORT_HEIGHT, Math.ceil(bottom) + 24) },
      });
      entry.screenshot = file;
      page.off("request", onRequest);
      page.off("response", onResponse);
      page.off("requestfailed", onFailed);
      // a call still unanswered when the page is left: how long it had waited
      for (const r of [...sent.keys()]) timed(r, "unanswered");
      entry.slowestRequests = [...entry.timings].sort((a, b) => b.ms - a.ms).slice(0, 5);
      delete entry.timings;
      result.dashboards.push(entry);
      if (entry.failedRequests.length || entry.errorsInPage.length || entry.formatProblems.length) {
        result.errors.push(
          `${entry.title}: ${JSON.stringify([...entry.failedRequests, ...entry.errorsInPage, ...entry.formatProblems])}`,
        );
      }
    }
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(result));
  return result.errors.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.log(JSON.stringify({ dashboards: [], errors: [`setup: ${err.stack ?? err}`] }));
    process.exit(2);
  },
);

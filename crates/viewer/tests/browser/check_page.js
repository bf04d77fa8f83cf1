// Opens a page written by `claude-api-logger html` in Debian's headless Chromium (driven by
// playwright-core), from disk, and reports as JSON what a reader would see: console errors,
// every request the page tried to make, the turns and exchanges shown, and the full request
// shown once the last exchange's details are expanded. Saves two screenshots: the top of the
// page, and the expanded exchange (SCREENSHOT with -detail before .png).
//
// usage: node check_page.js PAGE.html SCREENSHOT.png
"use strict";
const { chromium } = require("playwright-core");
const path = require("path");

(async () => {
  const [page_file, screenshot] = process.argv.slice(2);
  const url = "file://" + path.resolve(page_file);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  const report = { console_errors: [], page_errors: [], requests: [], blocked: [] };
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    page.on("console", (m) => { if (m.type() === "error") report.console_errors.push(m.text()); });
    page.on("pageerror", (e) => report.page_errors.push(String(e)));
    // Every request the page makes, whatever its scheme; only the page itself is allowed.
    await page.route("**/*", (route) => {
      const u = route.request().url();
      report.requests.push(u);
      if (u === url) return route.continue();
      report.blocked.push(u);
      return route.abort();
    });
    page.on("request", (r) => { if (!report.requests.includes(r.url())) report.requests.push(r.url()); });
    const started = Date.now();
    await page.goto(url, { waitUntil: "load" });
    report.load_ms = Date.now() - started;
    report.title = await page.title();
    report.turns = await page.$$eval("h3.turn", (hs) => hs.map((h) => h.textContent));
    report.exchanges = await page.$$eval("article.ex", (xs) => xs.map((x) => ({
      classes: x.className,
      head: x.querySelector(".ex-head").textContent,
      text: x.querySelector(".msgs").textContent,
    })));
    // Expand the details of the last exchange that has a base (a diff), else the first.
    const details = await page.$$("details.detail");
    const target = details[details.length - 1];
    const t0 = Date.now();
    await target.evaluate((d) => { d.scrollIntoView(); });
    await target.click({ position: { x: 30, y: 8 } });
    await page.waitForSelector("details.detail[open] pre.request-json");
    report.expand_ms = Date.now() - t0;
    const detail = await target.evaluate((d) => ({
      open: d.open,
      request: d.querySelector("pre.request-json").textContent,
      response: d.querySelector("pre.response-json").textContent,
      diff: d.querySelector(".diff") ? d.querySelector(".diff").textContent : null,
    }));
    report.detail = {
      open: detail.open,
      request: JSON.parse(detail.request),
      response: JSON.parse(detail.response),
      diff: detail.diff,
    };
    // A second picture: the expanded exchange, its diff and full request.
    await target.screenshot({ path: screenshot.replace(/\.png$/, "-detail.png") });
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: screenshot, fullPage: false });
    report.screenshot = screenshot;
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(report));
})().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});

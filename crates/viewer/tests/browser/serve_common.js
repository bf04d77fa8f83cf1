// What the `claude-api-logger serve` browser checks share: Debian's headless Chromium driven by
// playwright-core, pages that record what a reader must never see happen (a dialog, a
// Content-Security-Policy violation, a console error, an uncaught exception, a request
// leaving the server, a reload).
"use strict";
const { chromium } = require("playwright-core");

async function open(origin) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  // Before any script of a page: count policy violations, and notice a script that ran.
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) =>
      window.__csp.push(e.violatedDirective + " " + e.blockedURI + " " + (e.sample || "")));
  });
  const report = {
    console_errors: [], page_errors: [], dialogs: [], navigations: [], elsewhere: [],
  };
  const page = await watch(await context.newPage(), origin, report, "navigations");
  return { browser, context, page, report };
}

// Records what happens on `page` into `report`; its main-frame navigations under `key`.
async function watch(page, origin, report, key) {
  report[key] = report[key] || [];
  page.on("console", (m) => {
    if (m.type() === "error" && !report.in_control) report.console_errors.push(m.text());
  });
  page.on("pageerror", (e) => report.page_errors.push(String(e)));
  page.on("dialog", (d) => { report.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on("framenavigated", (f) => { if (f === page.mainFrame()) report[key].push(f.url()); });
  await page.route("**/*", (route) => {
    const u = route.request().url();
    if (u.startsWith(origin + "/")) return route.continue();
    report.elsewhere.push(u);
    return route.abort();
  });
  return page;
}

// Violations and whether any injected script ran (it would set window.__pwned or open a dialog).
// Then a control: a script the page did not bring is added; the policy must refuse it, and the
// refusal must be seen, or the counts above prove nothing.
async function finish(page, report) {
  report.csp_violations = (report.csp_violations || []).concat(await page.evaluate(() => window.__csp));
  report.pwned = report.pwned === true || await page.evaluate(() => window.__pwned === true);
  report.in_control = true;
  report.control = await page.evaluate(async () => {
    const before = window.__csp.length;
    const s = document.createElement("script");
    s.textContent = "window.__control = true";
    document.body.appendChild(s);
    await new Promise((r) => setTimeout(r, 200));
    return { violations: window.__csp.length - before, ran: window.__control === true };
  });
  delete report.in_control;
}

module.exports = { open, watch, finish };

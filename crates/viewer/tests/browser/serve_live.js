// Opens the session list of `claude-api-logger serve` twice: in one page it clicks a session,
// and prints `ready` once both pages follow the log (their event streams are open). Then it
// waits until a new turn holding MARKER appears on the session page and the session's row of
// the other page counts more exchanges, both without a reload, expands the new exchange's
// details, and prints `report {...}`.
//
// usage: node serve_live.js ORIGIN SESSION_ID MARKER SCREENSHOT.png
"use strict";
const { open, watch, finish } = require("./serve_common.js");

(async () => {
  const [origin, session, marker, shot] = process.argv.slice(2);
  const { browser, context, page, report } = await open(origin);
  try {
    const list = await watch(await context.newPage(), origin, report, "list_navigations");
    await list.goto(origin + "/", { waitUntil: "load" });
    await list.waitForFunction(() => document.getElementById("live-state").textContent.startsWith("live"));
    const row = `tr.session[data-session="${session}"]`;
    const exchangesIn = () => list.$eval(row, (r) => r.children[2].textContent);
    report.list_exchanges_before = await exchangesIn();
    await page.goto(origin + "/", { waitUntil: "load" });
    report.list = await page.$$eval("tr.session", (rows) => rows.map((r) => ({
      session: r.dataset.session, text: r.textContent, active: r.classList.contains("active"),
    })));
    await page.click(`tr.session[data-session="${session}"] a`);
    await page.waitForSelector("article.ex");
    await page.waitForFunction(() => document.getElementById("live-state").textContent.startsWith("live"));
    const state = () => page.evaluate(() => ({
      turns: Array.from(document.querySelectorAll("h3.turn")).map((h) => h.textContent),
      exchanges: document.querySelectorAll("article.ex").length,
      header: document.querySelector("header").textContent,
    }));
    report.before = await state();
    process.stdout.write("ready\n");
    const t0 = Date.now();
    await page.waitForFunction((m) => document.querySelector("main").textContent.includes(m),
      marker, { timeout: 180000 });
    report.seen_after_ms = Date.now() - t0;
    await list.waitForFunction(([sel, n]) => document.querySelector(sel).children[2].textContent !== n,
      [row, report.list_exchanges_before], { timeout: 30000 });
    report.list_exchanges_after = await exchangesIn();
    await finish(list, report);
    // Updates may still arrive (the turn's last exchange): let the page settle.
    await page.waitForTimeout(1500);
    report.after = await state();
    report.exchange_links = await page.$$eval("article.ex a.num", (as) => as.map((a) => a.getAttribute("href")));
    // The page's own script runs again on the new content: the last exchange's full request.
    const details = await page.$$("details.detail");
    const last = details[details.length - 1];
    await last.evaluate((d) => d.scrollIntoView());
    await last.click({ position: { x: 30, y: 8 } });
    await page.waitForSelector("details.detail[open] pre.request-json");
    report.detail_request = JSON.parse(await last.evaluate((d) => d.querySelector("pre.request-json").textContent));
    await page.screenshot({ path: shot, fullPage: false });
    await finish(page, report);
  } finally {
    await browser.close();
  }
  process.stdout.write("report " + JSON.stringify(report) + "\n");
})().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});

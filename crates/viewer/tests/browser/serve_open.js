// Opens one address of `claude-api-logger serve` (following its redirects), expands every
// exchange's details (the page's script then builds the full requests from logged data), and
// prints what a reader sees as JSON: where the browser ended up, the request and response
// bodies of an exchange page, the page text, and, with FETCH, that path fetched by the page
// itself (its cookie included).
//
// usage: node serve_open.js ORIGIN URL SCREENSHOT.png [FETCH]
"use strict";
const { open, finish } = require("./serve_common.js");

(async () => {
  const [origin, url, shot, fetchPath] = process.argv.slice(2);
  const { browser, page, report } = await open(origin);
  try {
    const response = await page.goto(url, { waitUntil: "load" });
    report.status = response.status();
    report.url = page.url();
    report.title = await page.title();
    for (const d of await page.$$("details.detail")) {
      await d.evaluate((el) => { el.open = true; });
    }
    await page.waitForTimeout(300);
    report.text = await page.evaluate(() => document.body.innerText);
    report.request_body = await page.evaluate(() => {
      const p = document.getElementById("request-body");
      return p ? p.textContent : null;
    });
    report.response_body = await page.evaluate(() => {
      const p = document.getElementById("response-body");
      return p ? p.textContent : null;
    });
    report.detail_requests = await page.$$eval("pre.request-json", (ps) => ps.map((p) => p.textContent));
    if (fetchPath) {
      report.fetched = await page.evaluate(async (p) => {
        const r = await fetch(p, { credentials: "same-origin" });
        return { status: r.status, type: r.headers.get("content-type"),
          disposition: r.headers.get("content-disposition"), text: await r.text() };
      }, fetchPath);
    }
    await page.screenshot({ path: shot, fullPage: false });
    await finish(page, report);
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(report));
})().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});

// Headless Chromium for tests, through playwright-core and the system's
// Chromium (Debian's `chromium`, installed by scripts/setup.sh). Nothing here
// downloads a browser: set CHROMIUM_BIN to use another binary.
//
//   import { launchBrowser } from "../lib/browser.mjs";
//   const browser = await launchBrowser();
//   try { const page = await browser.newPage(); ... } finally { await browser.close(); }
import { existsSync } from "node:fs";
import { chromium } from "playwright-core";

export const CHROMIUM_BIN = process.env.CHROMIUM_BIN || "/usr/bin/chromium";

/** True when the Chromium binary exists (for `{ skip: !haveBrowser() }`). */
export function haveBrowser() {
  return existsSync(CHROMIUM_BIN);
}

/** Launches headless Chromium; the caller closes it (`await browser.close()`). */
export async function launchBrowser(options = {}) {
  if (!haveBrowser()) {
    throw new Error(`no Chromium at ${CHROMIUM_BIN}: run scripts/setup.sh (apt-get install chromium) or set CHROMIUM_BIN`);
  }
  return chromium.launch({
    executablePath: CHROMIUM_BIN,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
    ...options,
  });
}

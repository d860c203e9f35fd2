// What the browser scripts share: their settings from the environment, and
// Debian's Chromium started the same way for each.

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

export const TIMEOUT = 60_000;

export const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

/// Where screenshots go (created), from SCREENSHOTS.
export function screenshots() {
  const dir = env("SCREENSHOTS");
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function launch() {
  return chromium.launch({
    executablePath: env("CHROMIUM"),
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}

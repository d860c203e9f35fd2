// First start from a backup: a member whose laptop is gone opens the page
// of a node on an empty directory, sends the backup file, sees whose it is
// (after a reload too), is told when the passphrase is wrong, restores, and
// lands on the home page signed in, on a phone-sized screen. Run by
// `a_newcomer_founds_a_coop_from_the_set_up_page` in cli.rs, which makes
// the backup, starts the node and passes its address.

import { join } from "node:path";
import { TIMEOUT, env, launch, screenshots } from "./common.mjs";

const shots = screenshots();
const started = Date.now();
const browser = await launch();
let failed = false;
let page = null;
try {
  const phone = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };
  page = await (await browser.newContext(phone)).newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on("pageerror", (error) => { console.error(`page error: ${error.message}`); failed = true; });
  const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

  await page.goto(env("URL"));
  await page.getByRole("heading", { name: "Welcome" }).waitFor();
  const upload = page.getByRole("form", { name: "Restore from a backup file" });
  await upload.getByLabel("Backup file").setInputFiles(env("BACKUP"));
  await shot("setup-4-restore-file-phone");
  await upload.getByRole("button", { name: "Open the backup" }).click();
  await page.getByRole("heading", { name: "Restore your node" }).waitFor();
  // A reload in the middle finds the file still there.
  await page.reload();
  await page.getByRole("heading", { name: "Restore your node" }).waitFor();
  const did = env("DID");
  if (!(await page.getByText(did).count())) throw new Error(`the page does not say whose backup it is (${did})`);

  const unlock = page.getByRole("form", { name: "Unlock the backup" });
  await unlock.getByLabel("The backup's passphrase").fill("not the passphrase at all");
  await unlock.getByRole("button", { name: "Restore" }).click();
  await unlock.getByRole("alert").waitFor();
  await unlock.getByLabel("The backup's passphrase").fill(env("PASSPHRASE"));
  await shot("setup-5-restore-unlock-phone");
  await unlock.getByRole("button", { name: "Restore" }).click();

  await page.getByRole("heading", { name: `Hello, ${env("NAME")}` }).waitFor();
  await shot("setup-6-restored-home-phone");
  console.log(`restore: from the first page to the home page in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} catch (error) {
  console.error(error);
  failed = true;
  if (page) await page.screenshot({ path: join(shots, "failure-restore.png"), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
if (failed) process.exit(1);
console.log("restore test passed");

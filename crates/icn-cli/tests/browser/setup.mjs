// First start in the browser: a newcomer opens the page of a node that has
// no identity yet, creates one, founds a co-op, and lands on the home page,
// signed in, on a phone-sized screen; a second visitor then finds no
// set-up to take over. With INVITATION set, the newcomer applies to join
// that co-op instead of founding one, and once admitted votes on the
// proposal PROPOSAL and pays PAYEE an hour. Run by `a_newcomer_founds_a_coop_from_the_set_up_page`
// in cli.rs, which starts the node and passes its address.

import { join } from "node:path";
import { TIMEOUT, env, launch, screenshots } from "./common.mjs";

const shots = screenshots();
const started = Date.now();
const browser = await launch();
let failed = false;
const pages = [];
try {
  const phone = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };
  const page = await (await browser.newContext(phone)).newPage();
  pages.push(["newcomer", page]);
  page.setDefaultTimeout(TIMEOUT);
  page.on("pageerror", (error) => { console.error(`page error: ${error.message}`); failed = true; });
  const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

  await page.goto(env("URL"));
  await page.getByRole("heading", { name: "Welcome" }).waitFor();
  const identity = page.getByRole("form", { name: "Create your identity" });
  await identity.getByLabel("Your name").fill(env("NAME"));
  // A passphrase anyone would guess is refused, with the reason.
  await identity.getByLabel("Choose a passphrase").fill("password1");
  await identity.getByLabel("Repeat it").fill("password1");
  await identity.getByRole("button", { name: "Create my identity" }).click();
  await identity.getByRole("alert").waitFor();
  await identity.getByLabel("Choose a passphrase").fill(env("PASSPHRASE"));
  await identity.getByLabel("Repeat it").fill(env("PASSPHRASE"));
  await shot("setup-1-identity-phone");
  await identity.getByRole("button", { name: "Create my identity" }).click();

  await page.getByRole("heading", { name: "Join your co-op" }).waitFor();
  if (process.env.INVITATION) {
    // The second run: apply to the co-op the first one founded (its
    // members then vouch).
    const join = page.getByRole("form", { name: "Join with an invitation" });
    await join.getByLabel("Invitation").fill(env("INVITATION"));
    const name = await join.getByLabel("Your name").inputValue();
    if (name !== env("NAME")) throw new Error(`the name was not carried over: ${JSON.stringify(name)}`);
    await shot("setup-2-join-phone");
    await join.getByRole("button", { name: "Ask to join" }).click();
  } else {
    const found = page.getByRole("form", { name: "Found a co-op" });
    await found.getByLabel("The co-op's name").fill(env("COOP"));
    // The questions of `icnctl coop init`, answered here.
    await found.getByLabel("Flag a member above this many hours").fill("60");
    await found.getByLabel("Three quarters").check();
    const name = await found.getByLabel("Your name").inputValue();
    if (name !== env("NAME")) throw new Error(`the name was not carried over: ${JSON.stringify(name)}`);
    await shot("setup-2-found-phone");
    await found.getByRole("button", { name: "Found the co-op" }).click();
  }

  await page.getByRole("heading", { name: `Hello, ${env("NAME")}` }).waitFor();
  if (!process.env.INVITATION) await shot("setup-3-home-phone");
  console.log(`set-up: from the first page to the home page in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (process.env.INVITATION) {
    // Once admitted (a member vouches on their node), the new member votes
    // on the proposal that opens next and pays the member who invited
    // them; the page updates by itself, nobody reloads it.
    const title = env("PROPOSAL");
    await page.getByRole("link", { name: "Decisions" }).click();
    await page.getByRole("link", { name: title }).click();
    await page.getByRole("button", { name: "Yes" }).click();
    await page.getByText("Your vote: yes").waitFor();
    await page.getByRole("link", { name: "Hours" }).click();
    const pay = page.getByRole("form", { name: "Log hours for someone" });
    await pay.getByLabel("To", { exact: true }).selectOption({ label: env("PAYEE") });
    await pay.getByLabel("Hours").fill("1h");
    await pay.getByLabel("What for").fill("Welcome cake");
    await pay.getByRole("button", { name: "Send hours" }).click();
    await page.getByText(`Sent 1h to ${env("PAYEE")}.`).waitFor();
    await shot("setup-3-joined-paid-phone");
    console.log(`set-up: from the first page to having voted and paid in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }

  // Another visitor: there is nothing left to set up, only a sign-in.
  const other = await (await browser.newContext(phone)).newPage();
  pages.push(["other", other]);
  other.setDefaultTimeout(TIMEOUT);
  await other.goto(env("URL"));
  await other.getByRole("heading", { name: "Sign in" }).waitFor();
  if (await other.getByRole("heading", { name: "Welcome" }).count()) throw new Error("the set-up page is still offered");
} catch (error) {
  console.error(error);
  failed = true;
  for (const [who, page] of pages) {
    await page.screenshot({ path: join(shots, `failure-setup-${who}.png`), fullPage: true }).catch(() => {});
  }
} finally {
  await browser.close();
}
if (failed) process.exit(1);
console.log("set-up test passed");

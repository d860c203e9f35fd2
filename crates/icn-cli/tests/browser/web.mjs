// Two members use the web app in Debian's Chromium, each signed in to their
// own node: Ada logs hours for Ben, whose balance changes while he watches;
// Ada proposes from a template, both vote, and the outcome reaches both
// pages. Run by `members_use_the_web_app_in_a_real_browser` in cli.rs,
// which starts the nodes and passes sign-in links in the environment.

import { join } from "node:path";
import { TIMEOUT, env, launch, screenshots } from "./common.mjs";

const shots = screenshots();
const browser = await launch();
let failed = false;
const pages = [];
try {
  // Ada on a laptop, Ben on a phone-sized screen.
  const ada = await (await browser.newContext({ viewport: { width: 1100, height: 800 } })).newPage();
  const benContext = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const ben = await benContext.newPage();
  pages.push(["ada", ada], ["ben", ben]);
  for (const [who, page] of [["ada", ada], ["ben", ben]]) {
    page.setDefaultTimeout(TIMEOUT);
    page.on("pageerror", (error) => { console.error(`${who}: page error: ${error.message}`); failed = true; });
    page.on("console", (message) => { if (message.type() === "error") console.error(`${who}: console: ${message.text()}`); });
  }
  const shot = (page, name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  const balance = (page) => page.getByTestId("balance");

  // Signing in by link, then the dashboard.
  await ada.goto(env("ADA_LINK"));
  await ada.getByRole("heading", { name: "Hello, Ada" }).waitFor();
  await ben.goto(env("BEN_LINK"));
  await ben.getByRole("heading", { name: "Hello, Ben" }).waitFor();
  await expectText(balance(ben), "0m");
  await shot(ben, "1-ben-dashboard-phone");

  // Ada's phone has no link: she signs in with her passphrase (a wrong one
  // first, which is refused).
  const phone = await (await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true })).newPage();
  phone.setDefaultTimeout(TIMEOUT);
  pages.push(["ada-phone", phone]);
  await phone.goto(new URL("/", env("ADA_LINK")).href);
  await phone.getByRole("heading", { name: "Sign in" }).waitFor();
  await phone.getByLabel("Your passphrase").fill("not my passphrase");
  await phone.getByRole("button", { name: "Sign in" }).click();
  await phone.getByRole("alert").getByText("wrong passphrase").waitFor();
  await phone.getByLabel("Your passphrase").fill(env("PASSPHRASE"));
  await phone.getByRole("button", { name: "Sign in" }).click();
  await phone.getByRole("heading", { name: "Hello, Ada" }).waitFor();
  await shot(phone, "1-ada-phone-signed-in");

  // Ada logs 1h30m for Ben from the Hours page.
  await ada.getByRole("link", { name: "Hours" }).click();
  const pay = ada.getByRole("form", { name: "Log hours for someone" });
  await pay.getByLabel("To", { exact: true }).selectOption({ label: "Ben" });
  await pay.getByLabel("Hours").fill("1h30m");
  await pay.getByLabel("What for").fill("Fixed the bike trailer");
  await shot(ada, "2-ada-logs-hours");
  await pay.getByRole("button", { name: "Send hours" }).click();
  await ada.getByText("Sent 1h30m to Ben.").waitFor();
  await ada.locator("#history").getByText("To Ben").waitFor();

  // Ben's page updates by itself (live events), without a reload.
  await expectText(balance(ben), "1h 30m");
  await ben.getByText("From Ada").waitFor();
  await shot(ben, "3-ben-paid-live");

  // A bad amount gets a clear error, and nothing is sent.
  await pay.getByLabel("To", { exact: true }).selectOption({ label: "Ben" });
  await pay.getByLabel("Hours").fill("lots");
  await pay.getByRole("button", { name: "Send hours" }).click();
  await pay.getByRole("alert").waitFor();
  // A bare number is not taken as minutes (it moved one minute where an
  // hour was meant): the page says which unit to write.
  await pay.getByLabel("Hours").fill("1");
  await pay.getByRole("button", { name: "Send hours" }).click();
  await pay.getByRole("alert").filter({ hasText: "write 1h for hours" }).waitFor();

  // Ada proposes from a template; Ben sees it waiting for his vote.
  await ada.getByRole("link", { name: "Decisions" }).click();
  await ada.getByText("New proposal").click();
  await ada.getByLabel("Title").fill("Buy a shared printer");
  await ada.getByLabel("Details").fill("For flyers and invoices.");
  await ada.getByLabel("How we decide").selectOption("simple-majority");
  await ada.getByRole("button", { name: "Open for votes" }).click();
  await ada.getByText("Proposal opened").waitFor();
  await ben.getByRole("link", { name: "Buy a shared printer" }).click();
  await ben.getByRole("button", { name: "Yes" }).click();
  await ben.getByText("Your vote: yes").waitFor();
  await shot(ben, "4-ben-voted");

  // Ada votes too; the co-op's closer (Ada's node) closes it early, and
  // both pages show the outcome.
  await ada.getByRole("link", { name: "Buy a shared printer" }).click();
  // Ben's vote reaches Ada's page live; her click waits for that redraw,
  // so it does not land on a button the redraw is about to replace.
  await expectText(ada.getByTestId("tally"), /Yes 1 · No 0/);
  await ada.getByRole("button", { name: "Yes" }).click();
  await ada.getByText("Your vote: yes").waitFor();
  await expectText(ada.getByTestId("status"), "accepted");
  await expectText(ben.getByTestId("status"), "accepted");
  await expectText(ben.getByTestId("tally"), /Yes 2 · No 0/);
  await shot(ada, "5-ada-outcome");
  await shot(ben, "6-ben-outcome-phone");

  // A newcomer joins from the web page with an invitation; both members
  // vouch for her from theirs, and their nodes admit her.
  const cat = await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage();
  cat.setDefaultTimeout(TIMEOUT);
  pages.push(["cat", cat]);
  const joinStarted = Date.now();
  await cat.goto(env("CAT_LINK"));
  await cat.getByRole("heading", { name: "Join your co-op" }).waitFor();
  const joinForm = cat.getByRole("form", { name: "Join with an invitation" });
  await joinForm.getByLabel("Invitation").fill(env("INVITATION"));
  await joinForm.getByLabel("Your name").fill("Cat");
  await joinForm.getByLabel("A word about you").fill("I fix brakes");
  await shot(cat, "7-cat-joins");
  await cat.getByRole("button", { name: "Ask to join" }).click();
  await cat.getByRole("heading", { name: "Hello, Cat" }).waitFor();
  for (const page of [ada, ben]) {
    await page.getByRole("link", { name: "Members" }).click();
    await page.getByRole("button", { name: "Vouch" }).click();
    await page.getByText("You vouched for Cat.").waitFor();
  }
  await cat.getByRole("link", { name: "Members" }).click();
  await cat.getByRole("heading", { name: "3 members" }).waitFor();
  console.log(`newcomer: from the sign-in link to admitted, with both vouches: ${((Date.now() - joinStarted) / 1000).toFixed(1)} s`);
  await shot(cat, "8-cat-admitted");

  // Cat's node names her guardians (Ada and Ben, who vouched for her). A
  // recovery request for Cat's identity comes from a device she does not
  // have: Ada approves it on her Members page, and Cat cancels it on hers.
  await ada.getByRole("link", { name: "Members" }).click();
  // An invitation to send a newcomer, from the web app.
  await ada.getByRole("button", { name: "Show an invitation" }).click();
  const invitation = await ada.getByTestId("invitation").inputValue();
  if (!invitation.startsWith("icn1")) throw new Error(`invitation ${JSON.stringify(invitation)}`);
  await shot(ada, "8-ada-invitation");
  await ada.getByText(/You are a guardian of .*Cat/).waitFor();
  await ada.getByLabel("A member's recovery request").fill(env("RECOVERY_REQUEST"));
  await ada.locator("#recovery form").last().getByRole("button", { name: "Approve" }).click();
  await ada.getByText("Recovery approved.").waitFor();
  await ada.getByText("Cat is recovering to a new device").waitFor();
  await cat.getByRole("link", { name: "Home" }).click();
  await cat.getByRole("heading", { name: "Your identity needs you" }).waitFor();
  await cat.getByRole("button", { name: "Open Recovery" }).click();
  await cat.getByText("Someone is recovering YOUR identity to a new device").waitFor();
  await shot(cat, "8-cat-recovery-warning");
  await cat.getByRole("button", { name: "Not me: cancel" }).click();
  await cat.getByText("Cancelled: that device can never take over your identity.").waitFor();
  // A guardian can freeze a member at once, and lift it.
  await ada.getByRole("button", { name: "Freeze Cat" }).click();
  await ada.getByText("Cat is frozen.").waitFor();
  await ada.getByRole("button", { name: "Unfreeze Cat" }).click();
  await ada.getByText("Cat is unfrozen.").waitFor();
  await ada.getByRole("button", { name: "Freeze Cat" }).waitFor();

  // Ada disputes her payment to Ben; Cat, the only member who is neither,
  // mediates.
  await ada.getByRole("link", { name: "Hours" }).click();
  const paid = ada.locator("#history li", { hasText: "To Ben" }).filter({ hasText: "Fixed the bike trailer" });
  await paid.getByRole("button", { name: "Dispute" }).click();
  const dispute = paid.getByRole("form", { name: "Dispute this payment" });
  await dispute.getByLabel("What went wrong").fill("The trailer still wobbles");
  await dispute.getByLabel("Mediator").selectOption({ label: "Cat" });
  await dispute.getByRole("button", { name: "Open dispute" }).click();
  await ada.getByText("Dispute opened; Cat will mediate.").waitFor();
  await shot(ada, "8-ada-disputed");

  // The token runs out: the browser signs in again with its own key.
  await ben.evaluate(() => localStorage.removeItem("icn.token"));
  await ben.goto(new URL("/#/", ben.url()).href);
  await ben.getByRole("heading", { name: "Hello, Ben" }).waitFor();

  // Offline, the installed app shows the last known state and says so.
  await ben.evaluate(() => navigator.serviceWorker.ready);
  await ben.reload();
  await ben.getByRole("heading", { name: "Hello, Ben" }).waitFor();
  await benContext.setOffline(true);
  await ben.reload();
  await expectText(balance(ben), "1h 30m");
  await ben.getByText("Offline: showing what this device last saw.").waitFor();
  await shot(ben, "9-ben-offline");
  await benContext.setOffline(false);

  // Keyboard only: the first tab stop skips to the content, and the tabs
  // are links a keyboard reaches.
  await ada.goto(new URL("/#/hours", ada.url()).href);
  await ada.reload();
  await ada.getByRole("heading", { name: "Hours", exact: true }).waitFor();
  await ada.keyboard.press("Tab");
  const first = await ada.evaluate(() => document.activeElement.textContent.trim());
  if (first !== "Skip to content") throw new Error(`first tab stop is ${JSON.stringify(first)}`);
  // Ben's session token, for the test to check that revoking his browser
  // ends it at once.
  console.log(`ben-token: ${await ben.evaluate(() => localStorage.getItem("icn.token"))}`);
} catch (error) {
  console.error(error);
  failed = true;
  for (const [who, page] of pages) {
    await page.screenshot({ path: join(shots, `failure-${who}.png`), fullPage: true }).catch(() => {});
  }
} finally {
  await browser.close();
}
if (failed) process.exit(1);
console.log("browser test passed");

async function expectText(locator, expected) {
  const deadline = Date.now() + TIMEOUT;
  let seen = null;
  while (Date.now() < deadline) {
    seen = await locator.textContent({ timeout: TIMEOUT }).catch(() => null);
    if (seen !== null && (expected instanceof RegExp ? expected.test(seen) : seen.trim() === expected)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`expected ${expected} but saw ${JSON.stringify(seen)}`);
}

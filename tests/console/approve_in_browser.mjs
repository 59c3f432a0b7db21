#!/usr/bin/env node
// Drives the operator console in a real headless Chromium (Debian's `chromium`, through
// playwright-core from tests/mcp/node_modules), as an approver would, for
// tests/mcp_gateway.rs. Reads ONE JSON document on stdin:
//   {"base": "http://127.0.0.1:P", "token": "...", "approver": "alice", "approval": "apr-…",
//    "screenshots": "/abs/dir", "chromium": "/usr/bin/chromium", "timeout_ms": 20000}
// and writes JSON lines on stdout:
//   {"approved": true, ...}   once the approval is approved in the browser; the test then
//                             makes the agent's retry, and this script waits for the page
//                             to show the approval as consumed;
//   {"done": true, ...}       at the end (or {"fatal": "..."} on any failure, exit 1).
import { chromium } from '../mcp/node_modules/playwright-core/index.mjs';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const input = JSON.parse(await new Promise((resolve) => {
    let text = '';
    process.stdin.on('data', (c) => (text += c));
    process.stdin.on('end', () => resolve(text));
}));
const timeout = input.timeout_ms ?? 20000;
const report = { screenshots: [], console_messages: [] };
const say = (line) => process.stdout.write(JSON.stringify(line) + '\n');

let browser;
try {
    mkdirSync(input.screenshots, { recursive: true });
    browser = await chromium.launch({
        executablePath: input.chromium ?? '/usr/bin/chromium',
        headless: true,
        // Running as root in a container: Chromium's sandbox needs user namespaces.
        args: ['--no-sandbox', '--disable-dev-shm-usage'],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const shot = async (page, name) => {
        const path = join(input.screenshots, name);
        await page.screenshot({ path, fullPage: true });
        report.screenshots.push(path);
    };
    const page = await context.newPage();
    // A content-security-policy violation or a script error shows here.
    page.on('console', (m) => report.console_messages.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => report.console_messages.push(`pageerror: ${e.message}`));

    // Not logged in: the console shows the login form only.
    await page.goto(`${input.base}/console`);
    report.login_redirected = page.url().endsWith('/console/login');
    await shot(page, '01-login.png');
    await page.fill('#token', input.token);
    await page.fill('#approver', input.approver);
    await Promise.all([page.waitForURL(`${input.base}/console`, { timeout }), page.click('button[type=submit]')]);
    report.pending_seen = (await page.textContent('table.approvals')).includes(input.approval);
    await shot(page, '02-pending.png');

    // A second tab stays on the list, to see it update by itself.
    const list = await context.newPage();
    await list.goto(`${input.base}/console`);

    await Promise.all([page.waitForURL(`**/console/approvals/${input.approval}`, { timeout }), page.click(`a[href="/console/approvals/${input.approval}"]`)]);
    report.arguments_shown = await page.textContent('#arguments');
    await shot(page, '03-approval.png');
    await page.fill('form.approve input[name=note]', 'checked in the console');
    await Promise.all([page.waitForLoadState('load'), page.click('#approve')]);
    await page.waitForSelector('text=Approved.', { timeout });
    report.status_after_approve = (await page.textContent('#status')).trim();
    await shot(page, '04-approved.png');

    // The list page reloads itself: nothing is pending any more.
    await list.waitForSelector('#no-pending', { timeout });
    report.list_updated = true;
    await shot(list, '05-list-updated.png');

    say({ approved: true });
    // The agent retries; the approval page shows it used, without a manual reload.
    await page.waitForSelector('#status .status-consumed', { timeout });
    report.consumed_shown = true;
    await shot(page, '06-consumed.png');
    await browser.close();
    say({ done: true, ...report });
    process.exit(0);
} catch (e) {
    say({ fatal: String(e?.stack ?? e), ...report });
    try { await browser?.close(); } catch { /* ignore */ }
    process.exit(1);
}

import { test, expect, Page } from '@playwright/test';
import { createHmac } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DOCTOR, DOCTOR_PASSWORD, signIn } from './auth';

const dataDir = process.env.MEDGEMMA_X_E2E_DATA_DIR!;

/** RFC 6238 code for a base32 secret at the current 30-second step plus `offset` (what a phone shows). */
function totp(secret: string, offset = 0): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secret.replace(/\s/g, '')) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g)!.map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000 / 30) + offset));
  const h = createHmac('sha1', key).update(counter).digest();
  const o = h[h.length - 1] & 15;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

async function signInAsAdmin(page: Page) {
  const password = readFileSync(join(dataDir, 'secrets/initial-admin-password'), 'utf8').trim();
  await page.goto('/login');
  await expect(page.locator('main.login')).toHaveAttribute('data-hydrated', 'true');
  await page.getByLabel('用户名').fill('admin');
  await page.getByLabel('密码').fill(password);
  await page.getByRole('button', { name: '登录' }).click();
  // An administrator sees no studies: sign-in leads to the administration page.
  await page.waitForURL((url) => url.pathname === '/admin');
  await expect(page.locator('main.admin')).toHaveAttribute('data-hydrated', 'true');
}

test('the administrator adds and disables an account, makes a token, and checks the audit trail', async ({ page }) => {
  await signInAsAdmin(page);
  await expect(page.locator(`tr[data-username="${DOCTOR}"]`)).toContainText('放射科医师');

  const form = page.locator('form.add-user');
  // Clinical accounts are made at the console; the page says so and makes administrators.
  await expect(page.locator('.console-only').first()).toContainText('medgemma-x user add');
  await form.locator('input[name="username"]').fill('e2e-head');
  await form.locator('input[name="display_name"]').fill('值班管理员');
  await form.locator('select[name="role"]').selectOption('admin');
  await form.locator('input[name="password"]').fill('head of the department');
  await form.getByRole('button', { name: '添加' }).click();
  const head = page.locator('tr[data-username="e2e-head"]');
  await expect(head).toContainText('系统管理员');
  await head.getByRole('button', { name: '停用' }).click();
  await expect(head.locator('.user-state')).toHaveText('已停用');

  await page.locator('input[name="token_name"]').fill('HIS 接口');
  await page.getByRole('button', { name: '生成令牌' }).click();
  await expect(page.locator('.new-token code')).toHaveText(/^mgx_[0-9a-f]{64}$/);
  await expect(page.locator('table.tokens')).toContainText('HIS 接口');

  await page.getByRole('button', { name: '校验哈希链' }).click();
  await expect(page.locator('.audit-verification')).toContainText('哈希链完整');
  await expect(page.locator('table.audit')).toContainText('user.add e2e-head role=admin');
  await page.screenshot({ path: 'test-results/admin.png', fullPage: true });

  // In English: the page's own words (headings, column heads, buttons, labels, states) hold no Chinese;
  // names the users typed (值班管理员, HIS 接口) are theirs.
  await page.locator('button.lang-switch').click();
  await expect(page.locator('main.admin h1')).toHaveText('Administration');
  await expect(page.locator('main.admin')).toHaveAttribute('data-hydrated', 'true');
  await expect(head.locator('.user-state')).toHaveText('disabled');
  await expect(head).toContainText('Administrator');
  const own = await page.locator('main.admin').locator('h1, h2, h3, th, button, label, .user-state, option, .totp-state').allInnerTexts();
  expect(own.filter((t) => /[\u3000-\u9fff\uff00-\uffef]/.test(t) && t.trim() !== '中文')).toEqual([]);
  await page.getByRole('button', { name: 'Verify the chain' }).click();
  await expect(page.locator('.audit-verification')).toContainText('chain intact');
  await page.screenshot({ path: 'test-results/admin-english.png', fullPage: true });
  await page.locator('button.lang-switch').click();
  await expect(page.locator('main.admin h1')).toHaveText('系统管理');
});

test('the administrator adds a DICOM peer, changes it, and removes it', async ({ page }) => {
  await signInAsAdmin(page);
  const form = page.locator('form.add-peer');
  await form.locator('input[name="ae_title"]').fill('DR_ROOM9');
  await form.locator('input[name="host"]').fill('10.0.3.29');
  await form.locator('input[name="port"]').fill('1104');
  await form.getByRole('button', { name: '添加' }).click();
  const peer = page.locator('tr[data-ae="DR_ROOM9"]');
  await expect(peer).toContainText('10.0.3.29');
  await expect(peer).toContainText('1104');
  await expect(peer.locator('td').nth(4)).toHaveText('—'); // may not query
  // The same AE title again, now allowed to query: the row changes, no second row.
  await form.locator('input[name="may_query"]').check();
  await form.getByRole('button', { name: '添加' }).click();
  await expect(peer.locator('td').nth(4)).toHaveText('是');
  await expect(page.locator('tr[data-ae="DR_ROOM9"]')).toHaveCount(1);
  // An AE title with a backslash is refused by the server, which the page says.
  await form.locator('input[name="ae_title"]').fill('A\\B');
  await form.getByRole('button', { name: '添加' }).click();
  await expect(page.locator('.form-status')).toContainText('AE 名称');
  await peer.getByRole('button', { name: '删除' }).click();
  await expect(page.locator('tr[data-ae="DR_ROOM9"]')).toHaveCount(0);
  await page.reload();
  await expect(page.locator('table.audit')).toContainText('dicom.peer.remove ae=DR_ROOM9');
  await expect(page.locator('table.audit')).toContainText('dicom.peer.add ae=DR_ROOM9 host=10.0.3.29 port=1104');
});

test('a radiologist turns on one-time codes, and sign-in then asks for one', async ({ page }) => {
  await signIn(page, '/account');
  await expect(page.locator('main.account')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.locator('.totp-state')).toHaveText('未启用');
  await page.getByRole('button', { name: '启用动态验证码' }).click();
  const secret = (await page.locator('.totp-secret code').textContent())!.replace(/\s/g, '');
  expect(secret).toMatch(/^[A-Z2-7]{32}$/);
  await page.getByLabel('6 位验证码').fill(totp(secret));
  await page.getByRole('button', { name: '确认启用' }).click();
  await expect(page.locator('.totp-state')).toHaveText('已启用');
  await page.screenshot({ path: 'test-results/account.png', fullPage: true });

  await page.getByRole('button', { name: '退出' }).click();
  await page.waitForURL((url) => url.pathname === '/login');
  await expect(page.locator('main.login')).toHaveAttribute('data-hydrated', 'true');
  await page.getByLabel('用户名').fill(DOCTOR);
  await page.getByLabel('密码').fill(DOCTOR_PASSWORD);
  await page.getByRole('button', { name: '登录' }).click();
  await expect(page.getByRole('alert')).toContainText('请输入动态验证码');
  // The enrolment used this step's code; a code is good once, so the next step's.
  await page.getByLabel('动态验证码').fill(totp(secret, 1));
  await page.getByRole('button', { name: '登录' }).click();
  await page.waitForURL((url) => url.pathname === '/studies');

  // Put the account back as the other tests expect it (the console's reset, as for a lost phone).
  execFileSync(process.env.MEDGEMMA_X_E2E_BIN!, ['user', 'totp-reset', DOCTOR, '--data-dir', dataDir]);
});

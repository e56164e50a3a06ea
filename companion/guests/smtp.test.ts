import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatMessage, parseSmtpUrl, sendMail } from './smtp.ts';
import { startFakeSmtp, type FakeSmtp } from './fake-smtp.ts';

describe('sendMail against a fake SMTP server on loopback', () => {
  let plain: FakeSmtp;
  let authed: FakeSmtp;
  before(async () => {
    plain = await startFakeSmtp();
    authed = await startFakeSmtp({ user: 'mailer', pass: 's3cret:/@' });
  });
  after(async () => {
    await plain.close();
    await authed.close();
  });

  test('delivers one message with its headers and a UTF-8 body', async () => {
    await sendMail(plain.url, { from: 'imagine@images.example', to: 'ana@example.com', subject: 'Photos für dich', text: 'Hello\n.\nline after a dot' });
    const mail = plain.received.at(-1)!;
    assert.equal(mail.from, 'imagine@images.example');
    assert.deepEqual(mail.to, ['ana@example.com']);
    assert.match(mail.headers.subject!, /^=\?UTF-8\?B\?/);
    assert.equal(mail.text, 'Hello\r\n.\r\nline after a dot');
  });

  test('AUTH PLAIN with credentials from the URL (loopback allows it without TLS)', async () => {
    await sendMail(authed.url, { from: 'a@b.example', to: 'c@d.example', subject: 'x', text: 'y' });
    assert.equal(authed.received.at(-1)!.auth, 'mailer');
    const wrong = authed.url.replace('s3cret', 'nope');
    await assert.rejects(sendMail(wrong, { from: 'a@b.example', to: 'c@d.example', subject: 'x', text: 'y' }), { code: 'ERR_MAIL_FAILED' });
  });

  test('a refused recipient, an unreachable server and header injection fail with codes', async () => {
    plain.refuse.add('nobody@example.com');
    await assert.rejects(sendMail(plain.url, { from: 'a@b.example', to: 'nobody@example.com', subject: 'x', text: 'y' }), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'ERR_MAIL_FAILED');
      assert.match(error.message, /550/);
      return true;
    });
    await assert.rejects(sendMail('smtp://127.0.0.1:1', { from: 'a@b.example', to: 'c@d.example', subject: 'x', text: 'y' }, { timeoutMs: 3000 }), {
      code: 'ERR_MAIL_FAILED',
    });
    assert.throws(() => formatMessage({ from: 'a@b.example', to: 'c@d.example\r\nBcc: x@y.example', subject: 'x', text: 'y' }), { code: 'ERR_VALIDATION' });
    assert.throws(() => formatMessage({ from: 'a@b.example', to: 'c@d.example', subject: 'x\nBcc: x@y.example', text: 'y' }), { code: 'ERR_VALIDATION' });
  });

  test('parseSmtpUrl: default ports, credentials decoded, other schemes refused', () => {
    assert.deepEqual(parseSmtpUrl('smtp://mail.example'), { secure: false, host: 'mail.example', port: 587 });
    assert.deepEqual(parseSmtpUrl('smtps://u%40x:p%3A@mail.example'), { secure: true, host: 'mail.example', port: 465, user: 'u@x', pass: 'p:' });
    assert.throws(() => parseSmtpUrl('http://mail.example'), { code: 'ERR_CONFIG_INVALID' });
  });
});

/**
 * A minimal SMTP client (RFC 5321) for invitation e-mails: one plain-text message per
 * connection. `smtp://[user:pass@]host[:port]` (default port 587) upgrades with STARTTLS when the
 * server offers it; `smtps://` (default 465) is TLS from the start. Credentials are sent with
 * AUTH PLAIN, and only over TLS or to a loopback host. The body goes base64-encoded (no 8BITMIME
 * or dot-stuffing worries); header values with CR or LF are refused (no header injection).
 *
 * @example
 *   await sendMail('smtp://mailer:secret@mail.example:587', {
 *     from: 'imagine@images.example', to: 'ana@example.com', subject: 'Photos for you', text: '...',
 *   });
 */
import { randomBytes } from 'node:crypto';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { ProtocolError } from '../../shared/errors.ts';

export interface MailMessage {
  from: string;
  to: string;
  subject: string;
  text: string;
}

export interface SendMailOptions {
  /** Whole conversation, milliseconds (default 20 s). */
  timeoutMs?: number;
  /** Name given in EHLO (default `localhost`). */
  heloName?: string;
  /** Extra TLS options (tests pass a CA or `rejectUnauthorized`). */
  tls?: { ca?: string | Buffer; rejectUnauthorized?: boolean };
}

interface SmtpTarget {
  secure: boolean;
  host: string;
  port: number;
  user?: string;
  pass?: string;
}

/** Parses an `smtp://` or `smtps://` URL. @throws ERR_CONFIG_INVALID */
export function parseSmtpUrl(input: string): SmtpTarget {
  let url: URL;
  try {
    url = new URL(input);
  } catch (error) {
    throw new ProtocolError('ERR_CONFIG_INVALID', 'smtpUrl is not a URL', { cause: error });
  }
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') {
    throw new ProtocolError('ERR_CONFIG_INVALID', 'smtpUrl must start with smtp:// or smtps://');
  }
  const secure = url.protocol === 'smtps:';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!host) throw new ProtocolError('ERR_CONFIG_INVALID', 'smtpUrl has no host');
  return {
    secure,
    host,
    port: url.port ? Number(url.port) : secure ? 465 : 587,
    ...(url.username ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } : {}),
  };
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|::1)$/i;

function checkHeader(name: string, value: string): string {
  if (/[\r\n\0]/.test(value)) throw new ProtocolError('ERR_VALIDATION', `mail ${name} must be one line`);
  return value;
}

function checkAddress(name: string, value: string): string {
  checkHeader(name, value);
  if (!/^[^\s<>@]+@[^\s<>@]+$/.test(value)) throw new ProtocolError('ERR_VALIDATION', `mail ${name} is not an address`);
  return value;
}

/** RFC 2047 encoded word for a non-ASCII header value. */
function encodeHeader(value: string): string {
  return /^[\x20-\x7e]*$/.test(value) ? value : `=?UTF-8?B?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

/** The message as sent after DATA (CRLF line ends, base64 body), without the final dot. */
export function formatMessage(message: MailMessage, now = new Date()): string {
  const from = checkAddress('from', message.from);
  const to = checkAddress('to', message.to);
  const subject = encodeHeader(checkHeader('subject', message.subject));
  const body = Buffer.from(message.text.replace(/\r?\n/g, '\r\n'), 'utf8').toString('base64').replace(/.{1,76}/g, '$&\r\n');
  return [
    `From: <${from}>`,
    `To: <${to}>`,
    `Subject: ${subject}`,
    `Date: ${now.toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${randomBytes(12).toString('hex')}@${from.slice(from.lastIndexOf('@') + 1)}>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: base64',
    '',
    body,
  ].join('\r\n');
}

/** Reads SMTP replies (possibly multi-line: `250-...` then `250 ...`) from a socket. */
class ReplyReader {
  #buffer = '';
  #lines: string[] = [];
  #waiter: ((reply: { code: number; lines: string[] }) => void) | undefined;
  #failure: ((error: Error) => void) | undefined;
  #socket: Socket | TLSSocket | undefined;
  /** A failure seen while no reply was awaited: the next wait fails with it. */
  #error: Error | undefined;
  readonly #onData = (chunk: Buffer) => this.#feed(chunk.toString('latin1'));
  readonly #onError = (error: Error) => this.#fail(error);
  readonly #onClose = () => this.#fail(new Error('the SMTP server closed the connection'));

  attach(socket: Socket | TLSSocket): void {
    this.detach();
    this.#socket = socket;
    socket.on('data', this.#onData).on('error', this.#onError).on('close', this.#onClose);
  }

  detach(): void {
    this.#socket?.off('data', this.#onData).off('error', this.#onError).off('close', this.#onClose);
    this.#socket = undefined;
  }

  next(): Promise<{ code: number; lines: string[] }> {
    return new Promise((resolve, reject) => {
      if (this.#error) return reject(this.#error);
      this.#waiter = resolve;
      this.#failure = reject;
      this.#drain();
    });
  }

  #fail(error: Error): void {
    this.#error ??= error;
    const failure = this.#failure;
    this.#waiter = undefined;
    this.#failure = undefined;
    failure?.(error);
  }

  #feed(text: string): void {
    this.#buffer += text;
    if (this.#buffer.length > 64 * 1024) {
      this.#fail(new Error('the SMTP server sent an over-long reply'));
      return;
    }
    let end: number;
    while ((end = this.#buffer.indexOf('\n')) !== -1) {
      this.#lines.push(this.#buffer.slice(0, end).replace(/\r$/, ''));
      this.#buffer = this.#buffer.slice(end + 1);
    }
    this.#drain();
  }

  #drain(): void {
    const last = this.#lines.findIndex((line) => /^\d{3}(?: |$)/.test(line));
    if (last === -1 || !this.#waiter) return;
    const lines = this.#lines.splice(0, last + 1);
    const waiter = this.#waiter;
    this.#waiter = undefined;
    this.#failure = undefined;
    waiter({ code: Number(lines[last]!.slice(0, 3)), lines: lines.map((l) => l.slice(4)) });
  }
}

/**
 * Sends one message. Resolves when the server accepted it (250 after DATA).
 * @throws ERR_MAIL_FAILED (unreachable, refused, timed out), ERR_VALIDATION (bad header values)
 */
export async function sendMail(smtpUrl: string, message: MailMessage, options: SendMailOptions = {}): Promise<void> {
  const target = parseSmtpUrl(smtpUrl);
  const data = formatMessage(message);
  const timeoutMs = options.timeoutMs ?? 20_000;
  const reader = new ReplyReader();
  const servername = isIP(target.host) ? undefined : target.host;
  const tlsOptions = { ...options.tls, ...(servername ? { servername } : {}) };
  let socket: Socket | TLSSocket = target.secure
    ? tlsConnect({ host: target.host, port: target.port, ...tlsOptions })
    : netConnect({ host: target.host, port: target.port });
  let secure = target.secure;
  const timer = setTimeout(() => socket.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  reader.attach(socket);

  const expect = async (wanted: number[], what: string) => {
    const reply = await reader.next();
    if (!wanted.includes(reply.code)) {
      throw new ProtocolError('ERR_MAIL_FAILED', `the SMTP server refused ${what}: ${reply.code} ${reply.lines.join(' ').slice(0, 200)}`);
    }
    return reply;
  };
  const command = async (line: string, wanted: number[], what = line.split(' ')[0]!) => {
    socket.write(`${line}\r\n`);
    return expect(wanted, what);
  };
  const helo = options.heloName ?? 'localhost';

  try {
    await expect([220], 'the connection');
    let ehlo = await command(`EHLO ${helo}`, [250], 'EHLO');
    if (!secure && ehlo.lines.some((l) => /^STARTTLS\b/i.test(l))) {
      await command('STARTTLS', [220]);
      reader.detach();
      const plain = socket;
      socket = await new Promise<TLSSocket>((resolve, reject) => {
        const upgraded = tlsConnect({ socket: plain, ...tlsOptions }, () => resolve(upgraded));
        upgraded.once('error', reject);
      });
      secure = true;
      reader.attach(socket);
      ehlo = await command(`EHLO ${helo}`, [250], 'EHLO');
    }
    if (target.user !== undefined) {
      if (!secure && !LOOPBACK.test(target.host)) {
        throw new ProtocolError('ERR_MAIL_FAILED', `${target.host} offers no TLS: the SMTP password is not sent in clear`);
      }
      const plain = Buffer.from(`\0${target.user}\0${target.pass ?? ''}`, 'utf8').toString('base64');
      await command(`AUTH PLAIN ${plain}`, [235], 'AUTH');
    }
    await command(`MAIL FROM:<${message.from}>`, [250], 'the sender');
    await command(`RCPT TO:<${message.to}>`, [250, 251], 'the recipient');
    await command('DATA', [354]);
    socket.write(`${data}\r\n.\r\n`);
    await expect([250], 'the message');
    socket.write('QUIT\r\n');
  } catch (error) {
    if (error instanceof ProtocolError) throw error;
    throw new ProtocolError('ERR_MAIL_FAILED', `mail could not be sent through ${target.host}:${target.port}: ${(error as Error).message}`, { cause: error });
  } finally {
    clearTimeout(timer);
    reader.detach();
    socket.end();
    socket.on('error', () => {});
  }
}

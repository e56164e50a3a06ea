/**
 * A tiny SMTP server for tests (plain TCP on 127.0.0.1): it speaks just enough of RFC 5321 to
 * accept messages (EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT) and keeps them, decoded. It can be
 * told to refuse recipients. Not for production use.
 */
import { createServer, type AddressInfo, type Server } from 'node:net';

export interface ReceivedMail {
  from: string;
  to: string[];
  auth?: string;
  headers: Record<string, string>;
  /** The body, decoded from base64. */
  text: string;
}

export interface FakeSmtp {
  url: string;
  received: ReceivedMail[];
  /** Recipients answered 550. */
  refuse: Set<string>;
  close(): Promise<void>;
}

export async function startFakeSmtp(options: { user?: string; pass?: string } = {}): Promise<FakeSmtp> {
  const received: ReceivedMail[] = [];
  const refuse = new Set<string>();
  const server: Server = createServer((socket) => {
    let buffer = '';
    let inData = false;
    let data = '';
    let mail: Partial<ReceivedMail> & { to: string[] } = { to: [] };
    const say = (line: string) => socket.write(`${line}\r\n`);
    say('220 fake.smtp ESMTP ready');
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      let end: number;
      while ((end = buffer.indexOf('\r\n')) !== -1) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            const [head = '', body = ''] = data.split('\r\n\r\n');
            const headers: Record<string, string> = {};
            for (const h of head.split('\r\n')) {
              const colon = h.indexOf(':');
              if (colon > 0) headers[h.slice(0, colon).toLowerCase()] = h.slice(colon + 1).trim();
            }
            received.push({ from: mail.from ?? '', to: mail.to, ...(mail.auth ? { auth: mail.auth } : {}), headers, text: Buffer.from(body.replace(/\r\n/g, ''), 'base64').toString('utf8') });
            mail = { to: [] };
            data = '';
            say('250 2.0.0 queued');
          } else {
            data += `${line.startsWith('..') ? line.slice(1) : line}\r\n`;
          }
          continue;
        }
        const verb = line.split(' ')[0]!.toUpperCase();
        if (verb === 'EHLO') {
          say('250-fake.smtp');
          say(options.user ? '250 AUTH PLAIN' : '250 8BITMIME');
        } else if (verb === 'AUTH') {
          const [, user = '', pass = ''] = Buffer.from(line.split(' ')[2] ?? '', 'base64').toString('utf8').split('\0');
          if (user === options.user && pass === options.pass) {
            mail.auth = user;
            say('235 2.7.0 authenticated');
          } else say('535 5.7.8 bad credentials');
        } else if (verb === 'MAIL') {
          if (options.user && !mail.auth) say('530 5.7.0 authentication required');
          else {
            mail.from = /<([^>]*)>/.exec(line)?.[1] ?? '';
            say('250 2.1.0 ok');
          }
        } else if (verb === 'RCPT') {
          const to = /<([^>]*)>/.exec(line)?.[1] ?? '';
          if (refuse.has(to)) say('550 5.1.1 no such mailbox');
          else {
            mail.to.push(to);
            say('250 2.1.5 ok');
          }
        } else if (verb === 'DATA') {
          inData = true;
          say('354 end with <CRLF>.<CRLF>');
        } else if (verb === 'QUIT') {
          say('221 bye');
          socket.end();
        } else say('502 5.5.2 not implemented');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const auth = options.user ? `${encodeURIComponent(options.user)}:${encodeURIComponent(options.pass ?? '')}@` : '';
  return {
    url: `smtp://${auth}127.0.0.1:${port}`,
    received,
    refuse,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

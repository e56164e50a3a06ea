/**
 * `imagine push PATH [--comment TEXT] [--checkout ID] [--wait] [--json]`: pushes the edited
 * file of a checkout (found by its working file's path, or named with --checkout when the file
 * was saved elsewhere). The agent restores the metadata, checks the workflow policy and queues
 * the push durably; this command then waits a few seconds and prints the new version's
 * `imagine://` URI, or, when it has not landed yet, the queued push's id and state (it is not
 * lost: `imagine queue` follows it). With --wait it waits for the end; a conflict or a failure
 * exits non-zero.
 */
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ProtocolError, isErrorCode } from '../../shared/errors.ts';
import type { Checkout, QueueItem } from '../../shared/schemas/agent.ts';
import { loadConfig } from '../config.ts';
import { callAgent } from './agent-call.ts';

export interface PushFlags {
  data?: string;
  comment?: string;
  checkout?: string;
  wait?: boolean;
  json?: boolean;
}

/** How long a push is waited for without --wait before its queue state is printed. */
const QUICK_MS = 10_000;
const POLL_MS = 200;
const FINAL = new Set(['done', 'conflict', 'failed']);

export async function runPush(path: string, flags: PushFlags): Promise<void> {
  const config = loadConfig({ env: process.env, flags: { dataDir: flags.data } });
  const file = resolve(path);
  let checkout: Checkout | undefined;
  const { items } = (await callAgent(config.dataDir, 'GET', '/checkouts')) as { items: Checkout[] };
  if (flags.checkout) {
    checkout = items.find((c) => c.id === flags.checkout);
    if (!checkout) throw new ProtocolError('ERR_CHECKOUT_NOT_FOUND', `no checkout ${JSON.stringify(flags.checkout)}`);
  } else {
    checkout = items.filter((c) => c.path === file).pop();
    if (!checkout) {
      throw new ProtocolError('ERR_CHECKOUT_NOT_FOUND', `${file} is not the file of a checkout (name one with --checkout ID)`);
    }
  }
  const body: Record<string, string> = {};
  if (flags.comment) body.comment = flags.comment;
  if (file !== checkout.path) body.path = file;
  let item = (await callAgent(config.dataDir, 'POST', `/checkouts/${encodeURIComponent(checkout.id)}/push`, body)) as QueueItem;

  const deadline = flags.wait ? Infinity : Date.now() + QUICK_MS;
  while (!FINAL.has(item.state) && Date.now() < deadline) {
    await sleep(POLL_MS);
    item = (await callAgent(config.dataDir, 'GET', `/queue/${encodeURIComponent(item.id)}`)) as QueueItem;
  }
  if (flags.json) process.stdout.write(`${JSON.stringify(item)}\n`);
  else if (item.state === 'done' && item.result) process.stdout.write(`${item.result.uri}\n`);
  else process.stdout.write(`${item.id}\t${item.state}${item.error ? `\t${item.error.message}` : ''}\n`);
  if (item.state === 'conflict' || item.state === 'failed') {
    const code = item.error && isErrorCode(item.error.code) ? item.error.code : 'ERR_INTERNAL';
    const hint = item.state === 'conflict' ? ' (resolve it in the panel, or: push-on-top / new-asset / discard)' : '';
    throw new ProtocolError(code, `push ${item.id} ended in ${item.state}: ${item.error?.message ?? ''}${hint}`);
  }
}

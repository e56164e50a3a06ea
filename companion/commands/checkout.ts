/**
 * `imagine checkout IMAGINE_URI [--rendition original|proxy] [--version V]`: asks the running
 * agent for a checkout and waits until its file is on disk; prints the local path (the whole
 * checkout with --json). A failed download exits non-zero with its code.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ProtocolError, isErrorCode } from '../../shared/errors.ts';
import type { Checkout, CheckoutRendition } from '../../shared/schemas/agent.ts';
import { loadConfig } from '../config.ts';
import { callAgent } from './agent-call.ts';

export interface CheckoutFlags {
  data?: string;
  rendition?: CheckoutRendition;
  version?: string;
  json?: boolean;
}

const POLL_MS = 200;

/** Waits until checkout `id` of the agent of `dataDir` is ready; throws its error when it fails. */
export async function waitForCheckout(dataDir: string, id: string): Promise<Checkout> {
  for (;;) {
    const checkout = (await callAgent(dataDir, 'GET', `/checkouts/${encodeURIComponent(id)}`)) as Checkout;
    if (checkout.state === 'failed') {
      const code = checkout.error && isErrorCode(checkout.error.code) ? checkout.error.code : 'ERR_INTERNAL';
      throw new ProtocolError(code, `the checkout failed: ${checkout.error?.message ?? 'unknown reason'}`);
    }
    if (checkout.state !== 'downloading') return checkout;
    await sleep(POLL_MS);
  }
}

export async function runCheckout(uri: string, flags: CheckoutFlags): Promise<void> {
  if (flags.rendition !== undefined && flags.rendition !== 'original' && flags.rendition !== 'proxy') {
    throw new ProtocolError('ERR_VALIDATION', '--rendition must be original or proxy');
  }
  const config = loadConfig({ env: process.env, flags: { dataDir: flags.data } });
  const body: Record<string, string> = { uri };
  if (flags.rendition) body.rendition = flags.rendition;
  if (flags.version) body.version = flags.version;
  const started = (await callAgent(config.dataDir, 'POST', '/checkouts', body)) as Checkout;
  const checkout = await waitForCheckout(config.dataDir, started.id);
  process.stdout.write(flags.json ? `${JSON.stringify(checkout)}\n` : `${checkout.path}\n`);
}

/**
 * Open (Photoshop) and place (InDesign) as user actions: each is a `canRun` check and a `run`.
 * Both ask the agent for a checkout (it downloads the original or the proxy through a signed
 * URL, verifies it and records the base version), wait until the file is on disk, then hand
 * the local path to the host.
 */
import { ProtocolError, isErrorCode } from '../../../../shared/errors.ts';
import type { AgentAsset, Checkout, CheckoutRendition } from '../../../../shared/schemas/agent.ts';
import type { HostAdapter, PlaceMode } from '../../../host/types.ts';
import type { AgentClient } from '../../agent-client.ts';
import { needsConfirmation, rightsWarnings } from './rights.ts';

export type CheckoutUse = 'open' | 'place';

export interface CheckoutActionInput {
  client: AgentClient;
  host: HostAdapter;
  asset: AgentAsset;
  use: CheckoutUse;
  rendition: CheckoutRendition;
  /** Placing: linked (kept up to date from the server) or embedded. Default linked. */
  placeMode?: PlaceMode;
  /** The user confirmed the rights warnings ("place anyway"). */
  confirmed: boolean;
  onProgress?: (checkout: Checkout) => void;
  /** Milliseconds between two looks at a download in progress. */
  pollMs?: number;
  /** Gives up waiting for the download after this long (milliseconds). */
  timeoutMs?: number;
}

export type CanRun = { ok: true } | { ok: false; reason: string; needsConfirmation?: boolean };

/** Which uses the host offers: Photoshop opens, InDesign places, the preview does both. */
export function usesOf(host: Pick<HostAdapter, 'capabilities'>): CheckoutUse[] {
  const out: CheckoutUse[] = [];
  if (host.capabilities.open) out.push('open');
  if (host.capabilities.place) out.push('place');
  return out;
}

export function canCheckout(input: Pick<CheckoutActionInput, 'host' | 'asset' | 'use' | 'confirmed'>): CanRun {
  const { host, asset, use } = input;
  if (asset.deleted) return { ok: false, reason: 'This image was deleted on the server.' };
  if (use === 'open' && !host.capabilities.open) return { ok: false, reason: 'This application cannot open images.' };
  if (use === 'place' && !host.capabilities.place) return { ok: false, reason: 'This application cannot place images.' };
  if (!input.confirmed && needsConfirmation(rightsWarnings(asset.rights))) {
    return { ok: false, reason: 'Check the rights warnings first.', needsConfirmation: true };
  }
  return { ok: true };
}

/** Checks out the asset, waits for the file, then opens or places it. Answers the checkout. */
export async function runCheckout(input: CheckoutActionInput): Promise<Checkout> {
  const allowed = canCheckout(input);
  if (!allowed.ok) throw new ProtocolError('ERR_FORBIDDEN', allowed.reason);
  const { client, host, asset } = input;
  let checkout = await client.checkout({ uri: asset.uri, rendition: input.rendition });
  input.onProgress?.(checkout);
  checkout = await waitUntilReady(client, checkout, input);
  if (input.use === 'open') await host.openFile(checkout.path);
  else await host.placeFile(checkout.path, input.placeMode ?? 'linked');
  return checkout;
}

/** Polls a checkout until its file is ready; its failure becomes a ProtocolError with its code. */
export async function waitUntilReady(
  client: Pick<AgentClient, 'getCheckout'>,
  first: Checkout,
  options: { onProgress?: (checkout: Checkout) => void; pollMs?: number; timeoutMs?: number } = {},
): Promise<Checkout> {
  const deadline = Date.now() + (options.timeoutMs ?? 30 * 60_000);
  let checkout = first;
  for (;;) {
    if (checkout.state === 'failed') {
      const code = checkout.error && isErrorCode(checkout.error.code) ? checkout.error.code : 'ERR_DOWNLOAD_INCOMPLETE';
      throw new ProtocolError(code, checkout.error?.message ?? 'The download failed.');
    }
    if (checkout.state !== 'downloading') return checkout;
    if (Date.now() > deadline) throw new ProtocolError('ERR_DOWNLOAD_INCOMPLETE', 'The download did not finish in time.');
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 250));
    checkout = await client.getCheckout(checkout.id);
    options.onProgress?.(checkout);
  }
}

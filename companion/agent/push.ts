/**
 * Preparing a push: what happens between "push this checkout" and a durable queue item.
 *
 * 1. The edited file (the checkout's working file, or another path the user saved to) must be
 *    there (ERR_FILE_MISSING) and settled: it is looked at before it is read and again after
 *    the push's spool file is made from it (at least `settleMs` apart), and anything made from
 *    it is thrown away if it changed in between (ERR_FILE_BUSY).
 * 2. Metadata preservation runs against the pristine base, exiftool writing its result from
 *    the edited file straight into the spool folder: what the editor dropped comes back,
 *    DocumentID survives, xmpMM:DerivedFrom names the base version.
 * 3. The studio's workflow policy is checked on the result (ERR_POLICY_VIOLATION with `issues`):
 *    the copy is exactly what will be uploaded, however long it waits, and is never changed
 *    again (only a `new-asset` conflict resolution rewrites it, and forgets its digest).
 *
 * Whatever fails, the spool folder is removed and the user's file is untouched (only read).
 * Steps 1 and 2 overlap: a 200 MB file costs one exiftool rewrite here, no copy besides, and
 * the policy facts are read as soon as it is written. `onWriting` lets the queue send the file
 * while it is written and hash it once it is; its digest is declared after the bytes
 * (docs/decisions.md, "save-back: one exiftool rewrite ... a head start").
 */
import { stat } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { ProtocolError } from '../../shared/errors.ts';
import type { WorkflowPolicy } from '../../shared/schemas/agent.ts';
import { formatUri, parseUri } from '../../shared/uri.ts';
import { preserve } from '../metadata/preserve.ts';
import type { CheckoutRecord } from './checkouts.ts';
import { ensurePolicy, readPolicyFacts, type PolicyFacts } from './policy.ts';
import { removeSpoolFolder, spoolFolder, whileSettled } from './spool.ts';

export interface PreparePushOptions {
  agentDir: string;
  itemId: string;
  checkout: CheckoutRecord;
  /** The file to push; default the checkout's working file. */
  path?: string;
  policy: WorkflowPolicy;
  /** Time between the two looks at the file, ms. */
  settleMs?: number;
  /**
   * Called when exiftool starts writing the prepared file front to back (see preserve's
   * `onOutputStarted`), with what will be uploaded and a promise settled when it is written:
   * the queue sends it ahead while it is made.
   */
  onWriting?: (file: { path: string; filename: string }, written: Promise<void>) => void;
}

export interface PreparedPush {
  /** The prepared copy in the spool. */
  path: string;
  size: number;
  /** The file name the server records. */
  filename: string;
  mediaType?: string;
  restored: string[];
  warnings: string[];
}

/** The imagine:// URI of a checkout's base version (`imagine://host/images/id@v3`). */
export function baseVersionUri(checkout: Pick<CheckoutRecord, 'uri' | 'assetId' | 'baseVersion'>): string {
  const { authority } = parseUri(checkout.uri);
  return formatUri({ authority, type: 'images', id: checkout.assetId, version: checkout.baseVersion });
}

export async function preparePush(options: PreparePushOptions): Promise<PreparedPush> {
  const { checkout } = options;
  if (checkout.rendition !== 'original') {
    throw new ProtocolError('ERR_BAD_REQUEST', 'a proxy checkout cannot be pushed: check out the original to edit it');
  }
  if (!checkout.pristine) throw new ProtocolError('ERR_CONFLICT', `checkout ${checkout.id} is not ready (${checkout.state})`);
  const source = resolve(options.path ?? checkout.path);
  const filename = options.path ? basename(source) : checkout.assetFilename;
  const dir = await spoolFolder(options.agentDir, options.itemId);
  const prepared = join(dir, `file${extname(source).toLowerCase().replace(/[^.a-z0-9]/g, '')}`);
  try {
    const pristine = checkout.pristine;
    const base = { versionId: checkout.baseVersion, uri: baseVersionUri(checkout) };
    // The policy facts are read as soon as the file is written, beside preservation's last read.
    let early: Promise<PolicyFacts> | undefined;
    const result = await whileSettled(
      source,
      () =>
        preserve(pristine, source, {
          base,
          output: prepared,
          onOutputStarted: (written) => {
            early = written.then(() => readPolicyFacts(prepared, filename));
            early.catch(() => {}); // awaited below when preservation succeeds
            options.onWriting?.({ path: prepared, filename }, written);
          },
        }),
      { settleMs: options.settleMs },
    );
    const [facts, { size }] = await Promise.all([early ?? readPolicyFacts(prepared, filename), stat(prepared)]);
    ensurePolicy(options.policy, facts);
    return { path: prepared, size, filename, mediaType: facts.mediaType, restored: result.restored, warnings: result.warnings };
  } catch (error) {
    await removeSpoolFolder(options.agentDir, options.itemId);
    throw error;
  }
}

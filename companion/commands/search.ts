/**
 * `imagine search [QUERY...]`: searches the local mirror through the running agent
 * (`GET /agent/v1/sync/search`), so it answers with every library server down. Same query
 * language and filters as the server; each result says which connection it comes from.
 */
import { ProtocolError } from '../../shared/errors.ts';
import type { AgentSearchPage } from '../../shared/schemas/agent.ts';
import { loadConfig } from '../config.ts';
import { callAgent } from './agent-call.ts';

export interface SearchFlags {
  data?: string;
  connection?: string;
  collection?: string;
  creator?: string;
  keyword?: string;
  format?: string;
  orientation?: string;
  rights?: string;
  sort?: string;
  limit?: string;
  cursor?: string;
  json?: boolean;
}

/** The agent path of a local search. */
export function localSearchPath(q: string, flags: SearchFlags): string {
  const params = new URLSearchParams();
  if (q.trim() !== '') params.set('q', q.trim());
  for (const name of ['connection', 'collection', 'creator', 'keyword', 'format', 'orientation', 'rights', 'sort', 'cursor'] as const) {
    const value = flags[name];
    if (value !== undefined && value !== '') params.set(name, value);
  }
  if (flags.limit !== undefined) {
    if (!/^\d{1,3}$/.test(flags.limit) || Number(flags.limit) < 1 || Number(flags.limit) > 200) {
      throw new ProtocolError('ERR_VALIDATION', '--limit must be a number from 1 to 200');
    }
    params.set('limit', flags.limit);
  }
  const search = params.toString();
  return `/sync/search${search ? `?${search}` : ''}`;
}

export async function runSearch(words: string[] | string | undefined, flags: SearchFlags): Promise<void> {
  const q = Array.isArray(words) ? words.join(' ') : (words ?? '');
  const config = loadConfig({ env: process.env, flags: { dataDir: flags.data } });
  const page = (await callAgent(config.dataDir, 'GET', localSearchPath(q, flags), undefined, { timeoutMs: 60_000 })) as AgentSearchPage;
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(page)}\n`);
    return;
  }
  const lines: string[] = [];
  for (const asset of page.items) {
    const title = typeof asset.metadata.title === 'string' && asset.metadata.title !== '' ? asset.metadata.title : asset.filename;
    lines.push(`${title}\t${asset.uri}\t${asset.connection}`);
  }
  for (const source of page.sources) {
    const total = source.total === undefined ? '' : ` of ${source.total}`;
    const error = source.error ? ` — ${source.error.message} [${source.error.code}]` : '';
    lines.push(`# ${source.connection}: ${source.count}${total} from the local mirror${error}`);
  }
  if (page.next) lines.push(`# more: imagine search ${JSON.stringify(q)} --cursor ${page.next}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

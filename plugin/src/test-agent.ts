/**
 * For the panel's unit tests: a real `AgentClient` whose `fetch` is answered by a script of
 * routes (the real agent is exercised by test/panel.e2e.test.ts), and a host adapter that
 * records calls like the preview's.
 */
import { AgentClient } from './agent-client.ts';
import type { ActiveDocument, HostAdapter, PlaceMode } from '../host/types.ts';

export type Handler = (request: { method: string; url: URL; body: unknown }) => { status: number; body?: unknown; type?: string } | 'network-error';

export function scriptedClient(routes: Record<string, Handler>): { client: AgentClient; calls: string[] } {
  const calls: string[] = [];
  const fetchFn = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    const method = init?.method ?? 'GET';
    const key = `${method} ${url.pathname}`;
    calls.push(key);
    const handler = routes[key];
    if (!handler) return new Response(JSON.stringify({ code: 'ERR_ROUTE_NOT_FOUND', title: 'No such route', status: 404 }), { status: 404, headers: { 'content-type': 'application/problem+json' } });
    const body = typeof init?.body === 'string' ? JSON.parse(init.body) : undefined;
    const answer = handler({ method, url, body });
    if (answer === 'network-error') throw new TypeError('fetch failed');
    const type = answer.type ?? (answer.status >= 400 ? 'application/problem+json' : 'application/json');
    return new Response(answer.body === undefined ? null : JSON.stringify(answer.body), { status: answer.status, headers: { 'content-type': type } });
  }) as typeof fetch;
  return { client: new AgentClient({ baseUrl: 'http://127.0.0.1:7420', token: 't', fetch: fetchFn }), calls };
}

export function recordingHost(active: ActiveDocument | null = null): HostAdapter & { calls: Array<[string, ...unknown[]]> } {
  const calls: Array<[string, ...unknown[]]> = [];
  return {
    name: 'browser',
    capabilities: { open: true, place: true, links: true },
    calls,
    async openFile(path: string) {
      calls.push(['openFile', path]);
    },
    async placeFile(path: string, mode: PlaceMode) {
      calls.push(['placeFile', path, mode]);
    },
    async activeDocument() {
      return active;
    },
    async saveActiveDocument() {
      calls.push(['saveActiveDocument']);
      return active?.path ?? null;
    },
    async listLinks() {
      return [];
    },
    async relink(id: string, path: string) {
      calls.push(['relink', id, path]);
    },
    async updateLink(id: string) {
      calls.push(['updateLink', id]);
    },
    onDocumentSaved() {
      return () => {};
    },
  };
}

/**
 * The guard in front of every route of the agent's local API, run before routing does
 * anything else (an `onRequest` hook on the agent's plugin context). In order:
 *
 * 1. The connection comes from this machine, and `Host` is a loopback name of the agent with
 *    its port (`127.0.0.1:PORT`, `localhost:PORT`, `[::1]:PORT`): a page served from a
 *    DNS-rebound name (`evil.example` → 127.0.0.1) is refused. → ERR_HOST_FORBIDDEN
 * 2. `Origin`, when present, is the agent's own (`http://127.0.0.1:PORT`, `http://localhost:PORT`,
 *    `http://[::1]:PORT`) or listed in `config.agentAllowedOrigins`: a foreign page cannot drive
 *    the agent, nor read its answers (no `Access-Control-Allow-Origin` for it, preflight
 *    refused). → ERR_ORIGIN_FORBIDDEN
 * 3. `Authorization: Bearer <pairing token>` (compared in constant time). Image routes
 *    (`/thumbs/...`, `/iiif/image`) take an agent-signed `exp`+`sig` query instead, so an `<img>`
 *    can load them. → ERR_PAIRING_REQUIRED, ERR_SIGNATURE_INVALID, ERR_SIGNATURE_EXPIRED
 *
 * Tokens and signatures are never logged (companion/http/log.ts redacts `sig` and the
 * Authorization header).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ProtocolError } from '../../shared/errors.ts';
import { isLoopbackHost } from '../../shared/origin.ts';
import { AGENT_PREFIX } from '../../shared/schemas/agent.ts';
import { sendProblem } from '../http/problem.ts';
import type { AgentServices } from './services.ts';
import { ensurePairingToken } from './pairing.ts';

const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]'];
const IMAGE_ROUTES = [`${AGENT_PREFIX}/thumbs/`, `${AGENT_PREFIX}/iiif/image`];
const BEARER = /^Bearer[ ]+([\x21-\x7e]{1,1000})$/i;

export const CORS = Object.freeze({
  methods: 'GET, POST, DELETE, OPTIONS',
  headers: 'Authorization, Content-Type, Accept, Last-Event-ID',
  maxAgeSeconds: 600,
});

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** The port the agent answers on: from its origin once known, else the socket's. */
function agentPort(request: FastifyRequest, services: AgentServices): number | undefined {
  if (services.origin) {
    const port = new URL(services.origin).port;
    return port === '' ? 80 : Number(port);
  }
  return request.socket?.localPort;
}

/** Host names (with brackets for IPv6) the agent answers to. */
function loopbackNames(services: AgentServices): string[] {
  const own = services.origin ? new URL(services.origin).hostname.toLowerCase() : undefined;
  return own && isLoopbackHost(own) && !LOOPBACK_NAMES.includes(own) ? [...LOOPBACK_NAMES, own] : LOOPBACK_NAMES;
}

/** Throws ERR_HOST_FORBIDDEN unless the request comes from this machine to a loopback name of the agent. */
export function checkHost(request: FastifyRequest, services: AgentServices): void {
  const remote = request.socket?.remoteAddress ?? request.ip;
  if (!remote || !isLoopbackHost(remote)) {
    throw new ProtocolError('ERR_HOST_FORBIDDEN', 'the agent answers requests from this machine only');
  }
  const host = (request.headers.host ?? '').toLowerCase();
  const port = agentPort(request, services);
  const match = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::([0-9]{1,5}))?$/.exec(host);
  const name = match?.[1];
  const hostPort = match?.[2] === undefined ? 80 : Number(match[2]);
  if (!name || !loopbackNames(services).includes(name) || port === undefined || hostPort !== port) {
    throw new ProtocolError(
      'ERR_HOST_FORBIDDEN',
      `the agent answers only to 127.0.0.1${port === undefined ? '' : `:${port}`} (or localhost, [::1]), not to Host ${JSON.stringify(host.slice(0, 100))}`,
    );
  }
}

/** The origins allowed to call the agent: its own loopback origins and the configured ones. */
export function allowedOrigins(request: FastifyRequest, services: AgentServices): Set<string> {
  const port = agentPort(request, services);
  const own = loopbackNames(services).map((name) => `http://${name}${port === 80 ? '' : `:${port}`}`);
  return new Set([...own, ...services.config.agentAllowedOrigins.map((o) => o.toLowerCase().replace(/\/+$/, ''))]);
}

/** Throws ERR_ORIGIN_FORBIDDEN when the request carries a foreign `Origin`; answers the allowed one. */
export function checkOrigin(request: FastifyRequest, services: AgentServices): string | undefined {
  const origin = request.headers.origin;
  if (origin === undefined) return undefined;
  if (typeof origin !== 'string' || !allowedOrigins(request, services).has(origin.toLowerCase())) {
    throw new ProtocolError('ERR_ORIGIN_FORBIDDEN', `requests from ${JSON.stringify(String(origin).slice(0, 100))} are not allowed`);
  }
  return origin;
}

export function isImageRoute(rawUrl: string): boolean {
  const path = rawUrl.split('?')[0]!;
  return IMAGE_ROUTES.some((prefix) => (prefix.endsWith('/') ? path.startsWith(prefix) : path === prefix));
}

export async function installAgentGuard(app: FastifyInstance, services: AgentServices): Promise<void> {
  const expected = digest(await ensurePairingToken(services.dir));

  const checkToken = (request: FastifyRequest) => {
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? BEARER.exec(header) : null;
    // Both sides hashed first: the comparison takes the same time whatever the length.
    if (!match || !timingSafeEqual(digest(match[1]!), expected)) {
      throw new ProtocolError(
        'ERR_PAIRING_REQUIRED',
        match ? 'the pairing token is wrong (see imagine pair)' : 'send the pairing token as Authorization: Bearer <token> (see imagine pair)',
      );
    }
  };

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    checkHost(request, services);
    const origin = checkOrigin(request, services);
    if (origin !== undefined) reply.header('access-control-allow-origin', origin);
    reply.header('vary', 'Origin');
    if (request.method === 'OPTIONS') {
      // A CORS preflight: only an allowed origin gets this far.
      reply
        .code(204)
        .header('access-control-allow-methods', CORS.methods)
        .header('access-control-allow-headers', CORS.headers)
        .header('access-control-max-age', String(CORS.maxAgeSeconds));
      if (origin !== undefined && request.headers['access-control-request-private-network'] === 'true') {
        reply.header('access-control-allow-private-network', 'true');
      }
      return reply.send();
    }
    if (isImageRoute(request.url) && !request.headers.authorization) {
      services.urls.verify(request.url);
      return;
    }
    checkToken(request);
  });

  // Unknown paths under /agent/v1 are answered after the guard too, not before it.
  app.setNotFoundHandler((request, reply) =>
    sendProblem(
      request,
      reply,
      new ProtocolError('ERR_ROUTE_NOT_FOUND', `no route for ${request.method} ${request.url.split('?')[0]}`),
    ),
  );
}

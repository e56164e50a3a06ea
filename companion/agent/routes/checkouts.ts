/**
 * Checkouts (shared/schemas/agent.ts): start one (answered at once, the download goes on in
 * the background; 200 when an existing checkout of the same version is reused), list, get,
 * follow one's progress as server-sent events until it is ready or failed, and push it.
 */
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { Checkout, CheckoutRequest, PushRequest, QueueItem } from '../../../shared/schemas/agent.ts';
import { problemResponses } from '../../routes/api-context.ts';
import { isSettled, type CheckoutRecord } from '../checkouts.ts';
import type { AgentServices } from '../services.ts';
import { agentWork } from '../work.ts';

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });
/** A comment line sent this often keeps idle proxies and clients from closing the stream. */
const HEARTBEAT_MS = 15_000;

export async function checkoutRoutes(app: FastifyInstance, options: { services: AgentServices }): Promise<void> {
  const { checkouts, queue } = await agentWork(options.services);

  app.post<{ Body: CheckoutRequest }>(
    '/checkouts',
    {
      schema: {
        tags: ['agent'],
        summary: 'Check out an image (imagine:// URI): answers at once, downloading; 200 when an existing checkout is reused',
        body: CheckoutRequest,
        response: { 200: Checkout, 201: Checkout, ...problemResponses(400, 401, 403, 404, 410, 502, 504) },
      },
    },
    async (request, reply) => {
      const { checkout, reused } = await checkouts.start(request.body);
      reply.header('cache-control', 'no-store');
      return reply.code(reused ? 200 : 201).send(checkout);
    },
  );

  app.get(
    '/checkouts',
    {
      schema: {
        tags: ['agent'],
        summary: 'Every checkout, oldest first',
        response: { 200: Type.Object({ items: Type.Array(Checkout) }), ...problemResponses(401, 403) },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'no-store');
      return { items: checkouts.list() };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/checkouts/:id',
    {
      schema: {
        tags: ['agent'],
        summary: 'One checkout, with its download progress',
        params: IdParams,
        response: { 200: Checkout, ...problemResponses(401, 403, 404) },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      return checkouts.require(request.params.id);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/checkouts/:id/events',
    {
      schema: {
        tags: ['agent'],
        summary: 'Server-sent events: a `checkout` event with each snapshot, until it is ready or failed',
        params: IdParams,
        response: {
          200: { description: 'text/event-stream of Checkout snapshots', content: { 'text/event-stream': { schema: { type: 'string' } } } },
          ...problemResponses(401, 403, 404),
        },
      },
    },
    async (request, reply) => {
      const first = checkouts.require(request.params.id);
      const raw = reply.raw;
      reply.hijack();
      raw.writeHead(200, {
        ...(reply.getHeaders() as Record<string, string>),
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      let ended = false;
      const send = (checkout: CheckoutRecord) => {
        if (ended) return;
        raw.write(`event: checkout\ndata: ${JSON.stringify(checkout)}\n\n`);
        if (isSettled(checkout)) end();
      };
      const heartbeat = setInterval(() => raw.write(': keep-alive\n\n'), HEARTBEAT_MS);
      const off = checkouts.subscribe(first.id, send);
      const end = () => {
        if (ended) return;
        ended = true;
        off();
        clearInterval(heartbeat);
        raw.end();
      };
      raw.on('close', end);
      send(checkouts.require(first.id));
    },
  );

  app.post<{ Params: { id: string }; Body: PushRequest }>(
    '/checkouts/:id/push',
    {
      schema: {
        tags: ['agent'],
        summary: 'Push the edited file as a new version: metadata restored, policy checked, queued durably (202)',
        params: IdParams,
        body: PushRequest,
        response: { 200: QueueItem, 202: QueueItem, ...problemResponses(400, 401, 403, 404, 409, 415, 422, 507) },
      },
    },
    async (request, reply) => {
      const { repeated, ...item } = await queue.enqueue(request.params.id, request.body ?? {});
      reply.header('cache-control', 'no-store').header('location', `${request.url.split('/checkouts/')[0]}/queue/${item.id}`);
      return reply.code(repeated ? 200 : 202).send(item);
    },
  );
}

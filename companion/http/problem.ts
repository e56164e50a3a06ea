/**
 * The only place where errors become HTTP: every error answered by the companion goes through
 * here and leaves as an RFC 9457 problem document with a stable code. Internals never leak:
 * anything that is not a ProtocolError is logged and answered as ERR_INTERNAL.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  PROBLEM_CONTENT_TYPE,
  ProtocolError,
  toProblem,
  type ErrorCode,
} from '../../shared/errors.ts';

/** Fastify's own error codes, mapped to ours. */
const fastifyCodes: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'ERR_PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'ERR_BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'ERR_BAD_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'ERR_BAD_REQUEST',
  FST_ERR_BAD_URL: 'ERR_BAD_REQUEST',
  FST_ERR_MAX_PARAM_LENGTH: 'ERR_VALIDATION',
  FST_ERR_ASYNC_CONSTRAINT: 'ERR_BAD_REQUEST',
};

/** Turns what a route or fastify threw into a ProtocolError. */
export function normaliseError(error: unknown): ProtocolError {
  if (error instanceof ProtocolError) return error;
  const e = error as FastifyError & { validation?: unknown; validationContext?: string };
  if (e && Array.isArray(e.validation)) {
    return new ProtocolError('ERR_VALIDATION', e.message, { cause: error });
  }
  const mapped = e?.code ? fastifyCodes[e.code] : undefined;
  if (mapped) return new ProtocolError(mapped, e.message, { cause: error });
  if (e?.statusCode === 400 && typeof e.message === 'string') {
    // Errors raised by fastify's body parsers (e.g. malformed JSON) carry a 400 status.
    return new ProtocolError('ERR_BAD_REQUEST', e.message, { cause: error });
  }
  return new ProtocolError('ERR_INTERNAL', 'internal error', { cause: error });
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, error: unknown) {
  const protocolError = normaliseError(error);
  if (protocolError.status >= 500) {
    request.log.error({ err: protocolError.cause ?? protocolError }, 'request failed');
  }
  const problem = toProblem(protocolError, request.url.split('?')[0]);
  return reply.code(problem.status).type(PROBLEM_CONTENT_TYPE).send(problem);
}

/** Installs the error and not-found handlers on an app (and so on every encapsulated child). */
export function installProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => sendProblem(request, reply, error));
  app.setNotFoundHandler((request, reply) =>
    sendProblem(
      request,
      reply,
      new ProtocolError('ERR_ROUTE_NOT_FOUND', `no route for ${request.method} ${request.url.split('?')[0]}`),
    ),
  );
}

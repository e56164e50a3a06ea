import type { FastifyRequest } from 'fastify';
import { ProtocolError } from '../../shared/errors.ts';
import { parseOrigin } from '../../shared/origin.ts';

/**
 * The origin this server is reached at: the configured public origin, or else the one the
 * request came to (scheme and Host header). A client checks the discovery document's origin
 * against where it fetched it, so reflecting Host cannot make a server claim another's name.
 */
export function requestOrigin(request: FastifyRequest, publicOrigin: string | undefined): string {
  if (publicOrigin) return publicOrigin;
  try {
    return parseOrigin(`${request.protocol}://${request.host}`, { allowInsecure: true });
  } catch (error) {
    throw new ProtocolError('ERR_BAD_REQUEST', 'the Host header is not a valid host', { cause: error });
  }
}

/**
 * Request logging that never records secrets: query parameters that carry signatures or
 * tokens are replaced before a URL reaches the log.
 */
const SECRET_PARAMS = new Set(['sig', 'signature', 'token', 'access_token', 'key']);

export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  let changed = false;
  for (const name of [...params.keys()]) {
    if (SECRET_PARAMS.has(name.toLowerCase())) {
      params.set(name, 'REDACTED');
      changed = true;
    }
  }
  return changed ? `${url.slice(0, q)}?${params.toString()}` : url;
}

export const requestSerializers = {
  req(request: { method: string; url: string; ip?: string }) {
    return { method: request.method, url: redactUrl(request.url), remoteAddress: request.ip };
  },
};

export const redactPaths = ['req.headers.authorization', 'req.headers.cookie'];
